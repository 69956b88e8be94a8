"""HB-1, HB-2, WD-1..3 and RECON-1."""

from __future__ import annotations

from reference.protocol.causes import Cause
from reference.protocol.frames import FrameType
from reference.protocol.messages import Heartbeat, ReqKeyframe
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, streaming_viewer

ACTIVE = StreamState.ACTIVE


def hb_1(broken: bool) -> Trace:
    """Heartbeats both ways for 8 s; the broken Primary skips one beat."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    for beat in range(1, 5):
        if not (broken and beat == 3):
            wire.p2v(t + 2.0 * beat, Heartbeat())
        wire.v2p(t + 2.0 * beat + 0.01, Heartbeat())
    return trace


def hb_2(broken: bool) -> Trace:
    """The Viewer falls silent; the Primary closes after 6 s, the broken one after 9 s."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.v2p(t + 1.0, Heartbeat())
    wire.p2v(t + 2.0, Heartbeat()).p2v(t + 4.0, Heartbeat()).p2v(t + 6.0, Heartbeat())
    if broken:
        wire.p2v(t + 8.0, Heartbeat()).close(t + 10.0)
    else:
        wire.close(t + 7.0)
    trace.action(t + 12.0, "note")
    return trace


def _stall(broken_after: float | None) -> Trace:
    """A streaming Viewer whose frames stop at t; RECOVERING follows after 2 s."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    viewer.decoded(t + 0.5, 1)
    stall_at = t + 0.5 + (broken_after if broken_after is not None else 2.0)
    viewer.to(stall_at, ViewerState.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    viewer.keyframe_request(stall_at + 0.001, 1, 0)
    wire.v2p(stall_at + 0.002, ReqKeyframe(epoch=1))
    wire.video(stall_at + 0.3, 1, key=True)
    viewer.decode(stall_at + 0.31, FrameType.VIDEO, 1, key=True)
    viewer.decoded(stall_at + 0.32, 1, key=True)
    viewer.to(stall_at + 0.33, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1,
              server_state=ACTIVE)
    return trace


def wd_1(broken: bool) -> Trace:
    """A stall; the broken Viewer declares it after only 0.8 s."""
    return _stall(0.8 if broken else None)


def wd_2(broken: bool) -> Trace:
    """A recovery whose requests go unanswered; the broken Viewer gives up after 2 retries."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    viewer.decoded(t + 0.5, 1)
    start = t + 2.5
    viewer.to(start, ViewerState.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    sent = 3 if broken else 6
    for attempt in range(sent):
        viewer.keyframe_request(start + attempt + 0.001, 1, attempt)
        wire.v2p(start + attempt + 0.002, ReqKeyframe(epoch=1))
    down = start + sent
    viewer.to(down, ViewerState.DISCONNECTED, Cause.KEYFRAME_RETRIES_EXHAUSTED, epoch=1,
              server_state=ACTIVE)
    wire.close(down + 0.001)
    return trace


def wd_3(broken: bool) -> Trace:
    """A keyframe decoded while RECOVERING; the broken Viewer stays RECOVERING."""
    trace = Trace()
    viewer = trace.viewer()
    t = streaming_viewer(viewer, 0.0)
    viewer.decoded(t + 0.5, 1)
    viewer.to(t + 2.5, ViewerState.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    viewer.keyframe_request(t + 2.5, 1, 0)
    viewer.decode(t + 2.8, FrameType.VIDEO, 1, key=True)
    viewer.decoded(t + 2.81, 1, key=True)
    if not broken:
        viewer.to(t + 2.82, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1,
                  server_state=ACTIVE)
    viewer.keyframe_request(t + 3.5, 1, 1)
    return trace


def recon_1(broken: bool) -> Trace:
    """A heartbeat timeout and a reconnect; the broken Viewer reconnects after 30 ms."""
    trace = Trace()
    viewer = trace.viewer()
    t = streaming_viewer(viewer, 0.0)
    viewer.to(t + 1.0, ViewerState.DISCONNECTED, Cause.HEARTBEAT_TIMEOUT, epoch=1,
              server_state=ACTIVE)
    viewer.decoder(t + 1.001, "release")
    streaming_viewer(viewer, t + 1.0 + (0.03 if broken else 0.2))
    return trace


CASES = {
    "HB-1": hb_1,
    "HB-2": hb_2,
    "WD-1": wd_1,
    "WD-2": wd_2,
    "WD-3": wd_3,
    "RECON-1": recon_1,
}
