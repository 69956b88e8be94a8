"""Building blocks the cases share: a handshake, a running stream, a Viewer that streams."""

from __future__ import annotations

from reference.protocol.auth import compute_response
from reference.protocol.causes import Cause
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthOk,
    Hello,
    Proto,
    Session,
    SetStream,
    StreamAccepted,
    StreamStateMessage,
)
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace, Viewer, Wire

SECRET = "s3cret"
NONCE = "0123456789abcdef0123456789abcdef"


def challenged(wire: Wire, t: float, *, version: int = 2, nonce: str = NONCE) -> float:
    """A fresh connection up to its AUTH_CHALLENGE (HELLO, PROTO for version 2);
    returns the time after it."""
    wire.open(t)
    wire.v2p(t + 0.001, Hello(client="viewer", version=version))
    if version >= 2:
        wire.p2v(t + 0.002, Proto(version=2))
    wire.p2v(t + 0.003, AuthChallenge(nonce=nonce))
    return t + 0.004


def handshake(wire: Wire, t: float, *, version: int = 2, nonce: str = NONCE) -> float:
    """HELLO .. AUTH_OK and SESSION on a fresh connection; returns the time after it."""
    t = challenged(wire, t, version=version, nonce=nonce)
    wire.v2p(t, Auth(response=compute_response(SECRET, nonce)))
    wire.p2v(t + 0.001, AuthOk())
    wire.p2v(t + 0.002, Session(id="s1"))
    return t + 0.003


def accepted_stream(wire: Wire, t: float, epoch: int = 1, *, version: int = 2) -> float:
    """Handshake, snapshot ACTIVE, accept, CSD and keyframe: a late join into a running stream."""
    t = handshake(wire, t, version=version)
    if version >= 2:
        wire.p2v(t, StreamStateMessage(state=StreamState.ACTIVE, epoch=epoch))
    wire.v2p(t + 0.001, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(t + 0.002, StreamAccepted(epoch=epoch, width=640, height=360, fps=30))
    wire.csd(t + 0.003, epoch)
    wire.video(t + 0.004, epoch, key=True)
    return t + 0.005


def streaming_viewer(viewer: Viewer, t: float, epoch: int = 1) -> float:
    """Telemetry of a Viewer that connects and reaches STREAMING at `epoch`."""
    viewer.to(t, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(t + 0.01, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(t + 0.02, ViewerState.NEGOTIATING, Cause.AUTH_OK,
              server_state=StreamState.ACTIVE, epoch=epoch)
    viewer.to(t + 0.03, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=epoch,
              server_state=StreamState.ACTIVE)
    viewer.decoder(t + 0.031, "create", epoch)
    from reference.protocol.frames import FrameType

    viewer.decode(t + 0.04, FrameType.CSD, epoch)
    viewer.decode(t + 0.05, FrameType.VIDEO, epoch, key=True)
    viewer.decoded(t + 0.06, epoch, key=True)
    viewer.to(t + 0.07, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=epoch,
              server_state=StreamState.ACTIVE)
    return t + 0.08


def new_trace() -> Trace:
    return Trace()
