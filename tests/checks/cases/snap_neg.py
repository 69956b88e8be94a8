"""SNAP-1, SNAP-2 and NEG-1..4."""

from __future__ import annotations

from reference.protocol.causes import Cause
from reference.protocol.messages import (
    Caps,
    Heartbeat,
    ReqKeyframe,
    SetStream,
    StreamAccepted,
    StreamRejected,
    StreamStateMessage,
)
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.common import handshake

ACTIVE, RECONF = StreamState.ACTIVE, StreamState.RECONFIGURING


def snap_1(broken: bool) -> Trace:
    """A version-2 connection; the broken Primary sends STREAM_ACCEPTED before the snapshot."""
    trace = Trace()
    wire = trace.wire()
    t = handshake(wire, 0.0)
    wire.p2v(t, Heartbeat())
    wire.v2p(t + 0.001, SetStream())
    if broken:
        wire.p2v(t + 0.002, StreamAccepted(epoch=1))
    wire.p2v(t + 0.003, StreamStateMessage(state=ACTIVE, epoch=1))
    return trace


def snap_2(broken: bool) -> Trace:
    """A join while the Primary reports RECONFIGURING epoch 2; the broken snapshot is stale."""
    trace = Trace()
    trace.primary(0.0, ACTIVE, 1)
    trace.primary(2.0, RECONF, 2)
    wire = trace.wire()
    t = handshake(wire, 3.0)
    wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1) if broken
             else StreamStateMessage(state=RECONF, epoch=2))
    wire.video(t + 1.0, 2)  # the trace goes on past the comparison
    return trace


def neg_1(broken: bool) -> Trace:
    """A negotiation; the broken Primary sends CSD before STREAM_ACCEPTED (same timestamp)."""
    trace = Trace()
    wire = trace.wire()
    t = handshake(wire, 0.0)
    wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.v2p(t + 0.001, SetStream())
    if broken:
        wire.csd(t + 0.002, 1)
    wire.p2v(t + 0.002, StreamAccepted(epoch=1))
    wire.csd(t + 0.002, 1).video(t + 0.003, 1, key=True)
    return trace


def neg_2(broken: bool) -> Trace:
    """An accept reordered after a newer snapshot; the broken Viewer rolls back to its epoch."""
    trace = Trace()
    viewer = trace.viewer()
    viewer.to(0.0, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.01, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.02, ViewerState.NEGOTIATING, Cause.AUTH_OK, epoch=3, server_state=RECONF)
    viewer.to(0.03, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=2 if broken else 3,
              server_state=RECONF)
    return trace


def neg_3(broken: bool) -> Trace:
    """An unsatisfiable request is rejected; the broken Primary closes the session at once."""
    trace = Trace()
    wire = trace.wire()
    t = handshake(wire, 0.0)
    wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.v2p(t + 0.001, SetStream(codec="vp9"))
    wire.p2v(t + 0.002, StreamRejected(reason="codec vp9 not offered", epoch=1))
    if broken:
        wire.close(t + 0.003)
    else:
        wire.p2v(t + 2.0, Heartbeat())
        wire.v2p(t + 2.0, Heartbeat())
    return trace


def neg_4(broken: bool) -> Trace:
    """A Viewer's negotiation; the broken Viewer asks for a keyframe before the accept."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    t = handshake(wire, 0.0)
    wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.v2p(t + 0.001, Caps()).v2p(t + 0.001, SetStream())
    if broken:
        wire.v2p(t + 0.001, ReqKeyframe(epoch=1))
    wire.p2v(t + 0.002, StreamAccepted(epoch=1))
    wire.csd(t + 0.003, 1).video(t + 0.004, 1, key=True)
    wire.v2p(t + 3.0, ReqKeyframe(epoch=1))  # after the accept: allowed
    return trace


CASES = {
    "SNAP-1": snap_1,
    "SNAP-2": snap_2,
    "NEG-1": neg_1,
    "NEG-2": neg_2,
    "NEG-3": neg_3,
    "NEG-4": neg_4,
}
