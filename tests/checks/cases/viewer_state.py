"""STATE-1..7, EVT-1, SNAP-3, VER-4 and LEGACY-1: the Viewer's state against its own wire."""

from __future__ import annotations

from reference.protocol.auth import compute_response
from reference.protocol.causes import Cause
from reference.protocol.frames import FrameType
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthOk,
    Heartbeat,
    Hello,
    ReqKeyframe,
    Session,
    SetStream,
    StreamAccepted,
    StreamEvent,
    StreamEventMessage,
    StreamStateMessage,
)
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace, Viewer, Wire
from tests.checks.cases.common import NONCE, SECRET, accepted_stream, streaming_viewer

ACTIVE, RECONF, PAUSED = StreamState.ACTIVE, StreamState.RECONFIGURING, StreamState.PAUSED
V = ViewerState
VIEWER_TAP = "viewer_side:v1"


def watched(trace: Trace) -> tuple[Wire, Viewer]:
    """A Viewer that joins a running stream (STREAMING at 0.07), seen by its tap and telemetry."""
    wire = trace.wire(VIEWER_TAP)
    viewer = trace.viewer()
    accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    return wire, viewer


def frames(wire: Wire, viewer: Viewer, start: float, end: float, epoch: int = 1) -> None:
    """Non-key VIDEO at 10 fps, delivered and decoded 1 ms later."""
    t = start
    while t < end:
        wire.video(t, epoch)
        viewer.decode(t + 0.001, FrameType.VIDEO, epoch)
        t += 0.1


def state_1(broken: bool) -> Trace:
    """The Primary announces a state; the broken one spells the state name, not its code."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 0.1, "STREAM_STATE|PAUSED|epoch=1" if broken else "STREAM_STATE|3|epoch=1")
    return trace


def state_2(broken: bool) -> Trace:
    """PAUSED reaches a STREAMING Viewer; it leaves 2.5 ms later, the broken one keeps STREAMING."""
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    if not broken:
        viewer.to(0.5025, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1, server_state=PAUSED)
    wire.p2v(1.0, Heartbeat())
    return trace


def state_3(broken: bool) -> Trace:
    """A Viewer enters STREAMING; the broken one before any keyframe was decoded."""
    trace = Trace()
    viewer = trace.viewer()
    viewer.to(0.0, V.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.01, V.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.02, V.NEGOTIATING, Cause.AUTH_OK)
    viewer.to(0.03, V.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=1, server_state=ACTIVE)
    viewer.decoder(0.031, "create", 1)
    viewer.decode(0.04, FrameType.CSD, 1)
    if not broken:
        viewer.decode(0.05, FrameType.VIDEO, 1, key=True)
    viewer.to(0.07, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    return trace


def state_4(broken: bool) -> Trace:
    """A reconfiguration to epoch 2; the broken Viewer decodes the new epoch without a flush."""
    trace = Trace()
    viewer = trace.viewer()
    t = streaming_viewer(viewer, 0.0)
    if not broken:
        viewer.decoder(t, "flush", 2)
    viewer.to(t + 0.001, V.RECONFIGURING, Cause.NEW_EPOCH, epoch=2, server_state=RECONF)
    viewer.decode(t + 0.01, FrameType.CSD, 2)
    viewer.decode(t + 0.02, FrameType.VIDEO, 2, key=True)
    viewer.rendered(t + 0.03, 2, 2)
    return trace


def state_5(broken: bool) -> Trace:
    """A 1 s pause; the broken Viewer asks for a keyframe in the middle of it."""
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    viewer.to(0.501, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1, server_state=PAUSED)
    wire.v2p(1.0, Heartbeat())
    if broken:
        wire.v2p(1.2, ReqKeyframe(epoch=1))
    wire.p2v(1.5, StreamStateMessage(state=ACTIVE, epoch=1))
    return trace


def state_6(broken: bool) -> Trace:
    """A stall and its recovery; the broken Viewer 'stalls' 0.1 s after its last frame (a flap)."""
    trace = Trace()
    wire, viewer = watched(trace)
    last = 0.5 if not broken else 2.4
    frames(wire, viewer, 0.1, last)
    viewer.to(2.5, V.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    viewer.keyframe_request(2.5, 1, 0)
    wire.v2p(2.501, ReqKeyframe(epoch=1))
    wire.csd(2.6, 1).video(2.61, 1, key=True)
    viewer.decode(2.611, FrameType.CSD, 1)
    viewer.decode(2.612, FrameType.VIDEO, 1, key=True)
    viewer.to(2.613, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    return trace


def state_7(broken: bool) -> Trace:
    """The server goes away; the Viewer releases its decoder 2.6 ms before writing DISCONNECTED."""
    trace = Trace()
    viewer = trace.viewer()
    t = streaming_viewer(viewer, 0.0)
    if not broken:
        viewer.decoder(t + 1.0, "release")
    viewer.to(t + 1.0026, V.DISCONNECTED, Cause.SERVER_CLOSED, epoch=1, server_state=ACTIVE)
    viewer.to(t + 1.5, V.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    return trace


def evt_1(broken: bool) -> Trace:
    """A join with the snapshot and no event; the broken Viewer waits for an event forever."""
    trace = Trace()
    wire = trace.wire(VIEWER_TAP)
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    viewer.to(0.0, V.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.004, V.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.006, V.NEGOTIATING, Cause.AUTH_OK)
    state = None if broken else ACTIVE
    viewer.to(0.0095, V.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=1, server_state=state)
    viewer.decoder(0.0096, "create", 1)
    viewer.decode(0.0105, FrameType.CSD, 1)
    viewer.decode(0.0115, FrameType.VIDEO, 1, key=True)
    if not broken:
        viewer.to(0.012, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    wire.p2v(t + 2.0, Heartbeat())
    return trace


def snap_3(broken: bool) -> Trace:
    """A Viewer reaches STREAMING; the broken one before its snapshot was delivered."""
    trace = Trace()
    wire = trace.wire(VIEWER_TAP)
    viewer = trace.viewer()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    wire.p2v(0.002, "PROTO|version=2")
    wire.p2v(0.003, AuthChallenge(nonce=NONCE))
    wire.v2p(0.004, Auth(response=compute_response(SECRET, NONCE)))
    wire.p2v(0.005, AuthOk())
    wire.p2v(0.006, Session(id="s1"))
    snapshot = StreamStateMessage(state=ACTIVE, epoch=1)
    if not broken:
        wire.p2v(0.007, snapshot)
    wire.v2p(0.008, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(0.009, StreamAccepted(epoch=1, width=640, height=360, fps=30))
    wire.csd(0.010, 1).video(0.011, 1, key=True)
    streaming_viewer(viewer, 0.0)
    if broken:
        wire.p2v(0.2, snapshot)
    return trace


def ver_4(broken: bool) -> Trace:
    """STREAMING on version 2; the broken Viewer infers it (no server state)."""
    trace = Trace()
    _, viewer = watched(trace)
    viewer.to(0.5, V.RECONFIGURING, Cause.DECODER_LOST, epoch=1, server_state=ACTIVE)
    viewer.decode(0.6, FrameType.VIDEO, 1, key=True)
    viewer.to(0.61, V.STREAMING, Cause.CONDITIONS_MET, epoch=1,
              server_state=None if broken else ACTIVE)
    return trace


def legacy_1(broken: bool) -> Trace:
    """A version-2 Viewer and a version-1 Primary; the broken Viewer infers before the fallback."""
    trace = Trace()
    wire = trace.wire(VIEWER_TAP)
    viewer = trace.viewer()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    wire.p2v(0.003, AuthChallenge(nonce=NONCE))
    wire.v2p(0.004, Auth(response=compute_response(SECRET, NONCE)))
    wire.p2v(0.005, AuthOk())
    wire.p2v(0.006, Session(id="s1"))
    wire.v2p(0.008, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(0.009, StreamAccepted(width=640, height=360, fps=30))
    wire.csd(0.010, 1).video(0.011, 1, key=True)
    viewer.to(0.0, V.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.004, V.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.006, V.NEGOTIATING, Cause.AUTH_OK)
    viewer.to(0.0095, V.RECONFIGURING, Cause.STREAM_ACCEPTED)
    viewer.decoder(0.0096, "create", None)
    viewer.decode(0.0105, FrameType.CSD, 1)
    viewer.decode(0.0115, FrameType.VIDEO, 1, key=True)
    at = 0.5 if broken else 3.01
    viewer.to(at, V.STREAMING, Cause.CONDITIONS_MET, epoch=1)
    wire.p2v(5.0, Heartbeat())
    return trace


def state_8(broken: bool) -> Trace:
    """A pause and a resume, each followed by its event; the broken Primary tells the resume only
    as STREAM_EVENT|RESUMED."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 1.0, StreamStateMessage(state=PAUSED, epoch=1))
    wire.p2v(t + 1.0, StreamEventMessage(event=StreamEvent.PAUSED.value, epoch=1))
    wire.p2v(t + 1.5, StreamEventMessage(event=StreamEvent.KEYFRAME_SENT.value, epoch=1))
    wire.p2v(t + 1.6, StreamEventMessage(event="NEW_SHINY_EVENT", epoch=1))  # VER-3: ignored
    wire.csd(t + 2.0, 1).video(t + 2.0, 1, key=True)
    if not broken:
        wire.p2v(t + 2.0, StreamStateMessage(state=ACTIVE, epoch=1))
    wire.p2v(t + 2.0, StreamEventMessage(event=StreamEvent.RESUMED.value, epoch=1))
    return trace


def evt_2(broken: bool) -> Trace:
    """An encoder restart and its end, then a pause; the broken Primary sends no event for the
    ACTIVE that ends the restart (RECONFIG_DONE, PROTOCOL.md 4.7)."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.p2v(t + 1.0, StreamStateMessage(state=RECONF, epoch=2))
    wire.p2v(t + 1.0, StreamEventMessage(event=StreamEvent.ENCODER_RESTARTED.value, epoch=2))
    wire.csd(t + 1.2, 2).video(t + 1.2, 2, key=True)
    wire.p2v(t + 1.2, StreamStateMessage(state=ACTIVE, epoch=2))
    wire.video(t + 1.23, 2)
    if not broken:
        wire.p2v(t + 1.23, StreamEventMessage(event=StreamEvent.RECONFIG_DONE.value, epoch=2))
    wire.p2v(t + 2.0, StreamStateMessage(state=PAUSED, epoch=2))
    wire.p2v(t + 2.0, StreamEventMessage(event=StreamEvent.PAUSED.value, epoch=2))
    wire.p2v(t + 3.0, StreamStateMessage(state=StreamState.STOPPED, epoch=2))  # cut off: not judged
    wire.close(t + 3.0)
    return trace


CASES = {
    "STATE-1": state_1,
    "STATE-2": state_2,
    "STATE-3": state_3,
    "STATE-4": state_4,
    "STATE-5": state_5,
    "STATE-6": state_6,
    "STATE-7": state_7,
    "STATE-8": state_8,
    "EVT-2": evt_2,
    "EVT-1": evt_1,
    "SNAP-3": snap_3,
    "VER-4": ver_4,
    "LEGACY-1": legacy_1,
}
