"""LEGACY-2, FRAME-1 and FRAME-2 (FRAME-2 judged for a Viewer: bad input towards it)."""

from __future__ import annotations

from reference.protocol.messages import Error, SetStream, StreamAccepted, StreamStateMessage
from reference.protocol.states import StreamState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, handshake

P2V, V2P = "p2v", "v2p"


def legacy_2(broken: bool) -> Trace:
    """A version-1 Viewer; the broken Primary sends it STREAM_STATE."""
    trace = Trace()
    wire = trace.wire()
    t = handshake(wire, 0.0, version=1)
    if broken:
        wire.p2v(t, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
    wire.v2p(t + 0.001, SetStream())
    wire.p2v(t + 0.002, StreamAccepted(epoch=1))
    wire.csd(t + 0.003, 1).video(t + 0.004, 1, key=True)
    return trace


def frame_1(broken: bool) -> Trace:
    """An oversize header reaches the Primary; the broken one answers with the wrong code."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.wire_error(t + 0.1, V2P, "oversize")
    wire.p2v(t + 0.101, Error(code="bad_message" if broken else "oversize", reason="too long"))
    wire.close(t + 0.102)
    return trace


def frame_2(broken: bool) -> Trace:
    """Unparsable control text reaches a Viewer; the broken Viewer closes without ERROR."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 0.1, "STREAM_STATE|9|epoch=x")
    if not broken:
        wire.v2p(t + 0.101, Error(code="bad_field", reason="unknown stream state code 9"))
    wire.close(t + 0.102)
    return trace


CASES = {"LEGACY-2": legacy_2, "FRAME-1": frame_1, "FRAME-2": frame_2}
