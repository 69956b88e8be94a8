"""EPOCH-1..4 and KEY-1..3."""

from __future__ import annotations

from reference.protocol.causes import Cause
from reference.protocol.frames import FrameType
from reference.protocol.messages import ReqKeyframe, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, streaming_viewer

ACTIVE, RECONF, PAUSED = StreamState.ACTIVE, StreamState.RECONFIGURING, StreamState.PAUSED


def epoch_1(broken: bool) -> Trace:
    """A reconfiguration action; the broken Primary announces RECONFIGURING with the old epoch."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    trace.action(t + 0.1, "reconfigure")
    new = 1 if broken else 2
    wire.p2v(t + 0.2, StreamStateMessage(state=RECONF, epoch=new))
    wire.csd(t + 0.3, new).video(t + 0.31, new, key=True)
    wire.p2v(t + 0.32, StreamStateMessage(state=ACTIVE, epoch=new))
    wire.video(t + 3.0, new)
    return trace


def epoch_2(broken: bool) -> Trace:
    """Media after a reconfiguration; the broken Primary tags one frame with the old epoch."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t, StreamStateMessage(state=RECONF, epoch=2))
    wire.csd(t + 0.1, 2).video(t + 0.11, 2, key=True)
    # Same timestamp as the next state message: wire order, not time, decides.
    wire.video(t + 0.2, 1 if broken else 2)
    wire.p2v(t + 0.2, StreamStateMessage(state=ACTIVE, epoch=2))
    return trace


def epoch_3(broken: bool) -> Trace:
    """A stale frame after a reconfiguration; the broken Viewer decodes it."""
    trace = Trace()
    viewer = trace.viewer()
    t = streaming_viewer(viewer, 0.0, epoch=1)
    viewer.to(t, ViewerState.RECONFIGURING, Cause.NEW_EPOCH, epoch=2,
              server_state=StreamState.RECONFIGURING)
    viewer.decoder(t + 0.001, "flush", 2)
    if broken:
        viewer.decode(t + 0.01, FrameType.VIDEO, 1)
    else:
        viewer.drop(t + 0.01, FrameType.VIDEO, 1, Cause.STALE_EPOCH, 2)
    viewer.decode(t + 0.02, FrameType.CSD, 2)
    viewer.decode(t + 0.03, FrameType.VIDEO, 2, key=True)
    viewer.rendered(t + 0.04, 2, 2)
    return trace


def epoch_4(broken: bool) -> Trace:
    """A stale STREAM_STATE reaches the Viewer; the broken Viewer rolls back to it."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    wire.p2v(t + 0.1, StreamStateMessage(state=RECONF, epoch=2))
    viewer.to(t + 0.101, ViewerState.RECONFIGURING, Cause.NEW_EPOCH, epoch=2,
              server_state=RECONF)
    wire.p2v(t + 0.2, StreamStateMessage(state=ACTIVE, epoch=1))  # reordered, stale
    if broken:
        viewer.to(t + 0.201, ViewerState.RECONFIGURING, Cause.NEW_EPOCH, epoch=1,
                  server_state=ACTIVE)
    return trace


def key_1(broken: bool) -> Trace:
    """Pause and resume; the broken Primary sends ACTIVE before the resumed keyframe."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 0.1, StreamStateMessage(state=ACTIVE, epoch=1))  # a repeat: not a start
    wire.p2v(t + 1.0, StreamStateMessage(state=PAUSED, epoch=1))
    if not broken:
        wire.csd(t + 2.0, 1).video(t + 2.0, 1, key=True)
    wire.p2v(t + 2.0, StreamStateMessage(state=ACTIVE, epoch=1))
    if broken:
        wire.csd(t + 2.01, 1).video(t + 2.01, 1, key=True)
    return trace


def key_2(broken: bool) -> Trace:
    """A keyframe request; the broken Primary never answers it."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.v2p(t + 1.0, ReqKeyframe(epoch=1))
    wire.video(t + 1.1, 1)
    if not broken:
        wire.video(t + 1.5, 1, key=True)
    wire.video(t + 3.0, 1)
    return trace


def key_3(broken: bool) -> Trace:
    """A late join; the broken Primary sends the joiner's first keyframe after 2 s."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    if broken:
        # Rebuild the join with the keyframe late.
        trace = Trace()
        wire = trace.wire()
        from reference.protocol.messages import SetStream, StreamAccepted
        from tests.checks.cases.common import handshake

        t = handshake(wire, 0.0)
        wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
        wire.v2p(t + 0.001, SetStream(width=640, height=360, fps=30, bitrate=1000000))
        wire.p2v(t + 0.002, StreamAccepted(epoch=1))
        wire.csd(t + 0.1, 1)
        wire.video(t + 2.0, 1, key=True)
    wire.video(t + 3.0, 1)
    return trace


def key_1_reconfigure(broken: bool) -> Trace:
    """A reconfiguration; the broken Primary sends ACTIVE of the new epoch before its keyframe."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 1.0, StreamStateMessage(state=RECONF, epoch=2))
    if not broken:
        wire.csd(t + 1.2, 2).video(t + 1.2, 2, key=True)
    wire.p2v(t + 1.2, StreamStateMessage(state=ACTIVE, epoch=2))
    if broken:
        wire.csd(t + 1.21, 2).video(t + 1.21, 2, key=True)
    return trace


def key_4(broken: bool) -> Trace:
    """A late join, then a pause and a resume; the broken Primary sends a P-frame to the joiner
    before its keyframe (in the same segment as the keyframe: wire order decides)."""
    trace = Trace()
    wire = trace.wire()
    from reference.protocol.messages import SetStream, StreamAccepted
    from tests.checks.cases.common import handshake

    t = handshake(wire, 0.0)
    wire.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.v2p(t + 0.001, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(t + 0.002, StreamAccepted(epoch=1))
    if broken:
        wire.video(t + 0.2, 1)
    wire.csd(t + 0.2, 1).video(t + 0.2, 1, key=True)
    wire.video(t + 0.23, 1).video(t + 0.26, 1)
    wire.video(t + 0.3, 0)  # mis-tagged with an older epoch: EPOCH-2's, not judged here
    wire.p2v(t + 1.0, StreamStateMessage(state=PAUSED, epoch=1))
    wire.csd(t + 2.0, 1).video(t + 2.0, 1, key=True)
    wire.p2v(t + 2.0, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.video(t + 2.03, 1)
    return trace


CASES = {
    "EPOCH-1": epoch_1,
    "EPOCH-2": epoch_2,
    "EPOCH-3": epoch_3,
    "EPOCH-4": epoch_4,
    "KEY-1": key_1,
    "KEY-2": key_2,
    "KEY-3": key_3,
    "KEY-4": key_4,
}
