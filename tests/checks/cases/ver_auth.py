"""VER-1..3 and AUTH-1..5."""

from __future__ import annotations

from reference.protocol.auth import compute_response
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthFail,
    AuthOk,
    Caps,
    Error,
    Hello,
    Proto,
    SetStream,
    StreamAccepted,
)
from tests.checks.builder import Trace
from tests.checks.cases.common import (
    NONCE,
    SECRET,
    accepted_stream,
    challenged,
    handshake,
)

OTHER_NONCE = "fedcba9876543210fedcba9876543210"


def ver_1(broken: bool) -> Trace:
    """A Viewer's connection; the broken Viewer opens with CAPS instead of HELLO."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    wire.open(0.0)
    if broken:
        wire.v2p(0.001, Caps())
    wire.v2p(0.002, Hello(client="viewer", version=2))
    wire.p2v(0.003, Proto(version=2))
    return trace


def ver_2(broken: bool) -> Trace:
    """A version-2 HELLO; the broken Primary sends PROTO after the challenge."""
    trace = Trace()
    wire = trace.wire()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    if not broken:
        wire.p2v(0.002, Proto(version=2))
    wire.p2v(0.003, AuthChallenge(nonce=NONCE))
    if broken:
        wire.p2v(0.003, Proto(version=2))
    return trace


def ver_3(broken: bool) -> Trace:
    """An unknown message reaches the Primary; the broken one answers ERROR and closes."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.v2p(t + 0.1, "FUTURE_THING|x=1")
    wire.v2p(t + 0.2, "HEARTBEAT|mood=fine")
    if broken:
        wire.p2v(t + 0.21, Error(code="bad_message", reason="unknown message"))
        wire.close(t + 0.22)
    else:
        wire.video(t + 0.3, 1)
        wire.video(t + 2.0, 1)
    return trace


def auth_1(broken: bool) -> Trace:
    """Two connections; the broken Primary gives the second the first one's nonce."""
    trace = Trace()
    handshake(trace.wire(conn="c1"), 0.0)
    handshake(trace.wire(conn="c2"), 1.0, nonce=NONCE if broken else OTHER_NONCE)
    return trace


def auth_2(broken: bool) -> Trace:
    """A wrong answer; the broken Primary accepts it."""
    trace = Trace()
    wire = trace.wire()
    challenged(wire, 0.0)
    wire.v2p(0.004, Auth(response=compute_response("not-the-secret", NONCE)))
    if broken:
        wire.p2v(0.005, AuthOk())
    else:
        wire.p2v(0.005, AuthFail(reason="bad_response"))
        wire.close(0.006)
    return trace


def auth_3(broken: bool) -> Trace:
    """A peer that never authenticates; the broken Primary keeps it 8 s."""
    trace = Trace()
    wire = trace.wire()
    challenged(wire, 0.0)
    end = 8.0 if broken else 5.0
    if not broken:
        wire.p2v(end, Error(code="timeout", reason="authentication timeout"))
    wire.close(end)
    trace.wire(conn="other").open(9.0)  # the trace goes on past the deadline
    return trace


def auth_4(broken: bool) -> Trace:
    """SET_STREAM before AUTH; the broken Primary accepts it before AUTH_OK."""
    trace = Trace()
    wire = trace.wire()
    challenged(wire, 0.0)
    wire.v2p(0.004, SetStream())
    if broken:
        wire.p2v(0.005, StreamAccepted(epoch=1))
    wire.v2p(0.006, Auth(response=compute_response(SECRET, NONCE)))
    wire.p2v(0.007, AuthOk())
    return trace


def auth_5(broken: bool) -> Trace:
    """A replayed answer on a second connection; the broken Primary accepts it."""
    trace = Trace()
    handshake(trace.wire(conn="c1"), 0.0)
    wire = trace.wire(conn="c2")
    wire.open(1.0)
    wire.v2p(1.001, Hello(client="viewer", version=2))
    wire.p2v(1.002, Proto(version=2))
    wire.p2v(1.003, AuthChallenge(nonce=OTHER_NONCE))
    wire.v2p(1.004, Auth(response=compute_response(SECRET, NONCE)))
    wire.p2v(1.005, AuthOk() if broken else AuthFail(reason="bad_response"))
    wire.close(1.006)
    return trace


CASES = {
    "VER-1": ver_1,
    "VER-2": ver_2,
    "VER-3": ver_3,
    "AUTH-1": auth_1,
    "AUTH-2": auth_2,
    "AUTH-3": auth_3,
    "AUTH-4": auth_4,
    "AUTH-5": auth_5,
}
PARAMS = {"AUTH-1": {"secret": SECRET}, "AUTH-2": {"secret": SECRET}}
