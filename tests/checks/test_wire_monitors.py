"""The handshake and framing monitors in the situations their one-line cases do not show:
which side a tap judges, pipelined requests, and a wrong answer accepted."""

from __future__ import annotations

from typing import Any

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from reference.protocol.auth import compute_response
from reference.protocol.messages import (
    Auth,
    AuthChallenge,
    AuthOk,
    Caps,
    Error,
    Hello,
    Proto,
    Session,
    SetStream,
    StreamRejected,
    StreamStateMessage,
)
from reference.protocol.states import StreamState
from tests.checks.builder import Trace
from tests.checks.cases.common import NONCE, SECRET, accepted_stream, handshake

P2V, V2P = "p2v", "v2p"


def status(trace: Trace, requirement: str, **params: Any) -> Status:
    (verdict,) = Engine({requirement: params}).feed_all(trace.records).finish()
    return verdict.status


def test_a_wrong_answer_accepted_fails_auth_2_only() -> None:
    trace = Trace()
    wire = trace.wire()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    wire.p2v(0.002, Proto(version=2)).p2v(0.003, AuthChallenge(nonce=NONCE))
    wire.v2p(0.004, Auth(response=compute_response("guess", NONCE)))
    wire.p2v(0.005, AuthOk()).p2v(0.006, Session(id="s1"))
    # One fault, one ID: the nonce was fresh, letting the wrong answer in is AUTH-2's.
    assert status(trace, "AUTH-1", secret=SECRET) is Status.PASS
    assert status(trace, "AUTH-2", secret=SECRET) is Status.FAIL


def test_a_reused_nonce_is_auth_1s_fault_not_a_replay() -> None:
    trace = Trace()
    for conn, t in (("c1", 0.0), ("c2", 1.0)):
        wire = trace.wire(conn=conn)
        wire.open(t)
        wire.v2p(t + 0.001, Hello(client="viewer", version=2))
        wire.p2v(t + 0.002, Proto(version=2)).p2v(t + 0.003, AuthChallenge(nonce=NONCE))
        wire.v2p(t + 0.004, Auth(response=compute_response(SECRET, NONCE)))
        wire.p2v(t + 0.005, AuthOk())
    assert status(trace, "AUTH-1") is Status.FAIL
    assert status(trace, "AUTH-5") is Status.NOT_OBSERVED


def test_a_request_pipelined_behind_auth_is_judged() -> None:
    """The raw client sends SET_STREAM right after AUTH: the tap records it before AUTH_OK."""
    trace = Trace()
    wire = trace.wire()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    wire.p2v(0.002, Proto(version=2)).p2v(0.003, AuthChallenge(nonce=NONCE))
    wire.v2p(0.004, Auth(response=compute_response(SECRET, NONCE)))
    wire.v2p(0.004, SetStream(codec="vp9"))
    wire.p2v(0.005, AuthOk()).p2v(0.005, Session(id="s1"))
    wire.p2v(0.005, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
    silent = Trace(list(trace.records))
    trace.wire().p2v(0.006, StreamRejected(reason="codec vp9 not offered", epoch=1))
    for t in (trace, silent):
        t.wire().p2v(3.0, "HEARTBEAT")
    assert status(trace, "NEG-3") is Status.PASS
    assert status(silent, "NEG-3") is Status.FAIL


def test_viewer_rules_are_not_judged_on_the_primary_side() -> None:
    """A raw client of the harness connects at the Primary's tap: it is not a Viewer."""
    trace = Trace()
    wire = trace.wire()
    wire.open(0.0)
    wire.v2p(0.001, Caps())
    wire.v2p(0.002, SetStream())
    assert status(trace, "VER-1") is Status.NOT_OBSERVED
    assert status(trace, "NEG-4") is Status.NOT_OBSERVED


def test_unknown_input_towards_a_viewer_judges_the_viewer() -> None:
    def viewer_answers(error: bool) -> Trace:
        trace = Trace()
        wire = trace.wire("viewer_side:v1")
        t = accepted_stream(wire, 0.0)
        wire.p2v(t + 0.1, "FUTURE_THING|x=1")
        if error:
            wire.v2p(t + 0.11, Error(code="bad_message", reason="unknown"))
        wire.video(t + 2.0, 1)
        return trace

    assert status(viewer_answers(False), "VER-3") is Status.PASS
    assert status(viewer_answers(True), "VER-3") is Status.FAIL
    # The same frames on the Primary's tap: the Viewer is not judged there.
    primary_tap = viewer_answers(True)
    for record in primary_tap.records:
        record["tap"] = "primary_side"
    assert status(primary_tap, "VER-3") is Status.NOT_OBSERVED


def test_frame_1_blames_the_sender_only_next_to_it() -> None:
    def garbled(tap: str, direction: str) -> Trace:
        trace = Trace()
        wire = trace.wire(tap)
        t = accepted_stream(wire, 0.0)
        wire.wire_error(t + 0.1, direction, "bad_magic")
        return trace

    assert status(garbled("primary_side", P2V), "FRAME-1") is Status.FAIL  # the Primary's bytes
    assert status(garbled("viewer_side:v1", V2P), "FRAME-1") is Status.FAIL  # the Viewer's
    # Bad bytes towards the Primary at its own tap came from the harness (a raw client).
    assert status(garbled("primary_side", V2P), "FRAME-1") is Status.PASS


def test_frame_2_judges_a_primary_receiver_too() -> None:
    def answered(error: bool) -> Trace:
        trace = Trace()
        wire = trace.wire()
        t = accepted_stream(wire, 0.0)
        wire.wire_error(t + 0.1, V2P, "bad_frame_type")
        if error:
            wire.p2v(t + 0.101, Error(code="bad_frame_type", reason="type 5"))
        wire.close(t + 0.102)
        return trace

    assert status(answered(True), "FRAME-2") is Status.PASS
    assert status(answered(False), "FRAME-2") is Status.FAIL


def test_a_frame_proxy_wire_error_is_not_a_tap_connection() -> None:
    trace = Trace()
    t = accepted_stream(trace.wire(), 0.0)
    trace.add({"t": t, "kind": "wire_error", "source": "frame_proxy", "proxy": "frame_proxy",
               "conn": "c1", "dir": V2P, "code": "bad_magic", "error": "bad magic"})
    assert status(trace, "FRAME-2") is Status.NOT_OBSERVED


def test_a_bye_in_answer_to_unknown_input_is_fatal_but_the_senders_bye_is_not() -> None:
    from reference.protocol.messages import Bye

    def closed_by(viewer: bool) -> Trace:
        trace = Trace()
        wire = trace.wire("viewer_side:v1")
        t = accepted_stream(wire, 0.0)
        wire.p2v(t + 0.1, "FUTURE_THING|x=1")
        if viewer:
            wire.v2p(t + 0.2, Bye(reason="confused"))
        else:
            wire.p2v(t + 0.2, Bye(reason="primary shutting down"))
        wire.close(t + 0.3)
        return trace

    assert status(closed_by(viewer=True), "VER-3") is Status.FAIL
    assert status(closed_by(viewer=False), "VER-3") is Status.PASS


def test_neg_2_reads_the_epoch_the_viewer_was_told_before_a_late_accept() -> None:
    """Telemetry shows no epoch before the accept; the Viewer's tap shows STREAM_STATE 2."""
    from reference.protocol.causes import Cause
    from reference.protocol.messages import StreamAccepted
    from reference.protocol.states import ViewerState

    def accepted_at(epoch: int) -> Trace:
        trace = Trace()
        wire = trace.wire("viewer_side:v1")
        viewer = trace.viewer()
        from tests.checks.cases.common import handshake

        t = handshake(wire, 0.0)
        viewer.to(0.0, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
        viewer.to(0.004, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
        viewer.to(0.006, ViewerState.NEGOTIATING, Cause.AUTH_OK)
        wire.p2v(t, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
        wire.v2p(t + 0.001, SetStream())
        wire.p2v(t + 0.2, StreamStateMessage(state=StreamState.RECONFIGURING, epoch=2))
        wire.p2v(t + 0.2, StreamAccepted(epoch=1))  # held back by the network
        viewer.to(t + 0.201, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=epoch)
        return trace

    assert status(accepted_at(2), "NEG-2") is Status.PASS
    assert status(accepted_at(1), "NEG-2") is Status.FAIL


def test_a_snapshot_with_a_state_name_is_state_1s_fault_not_snap_1s() -> None:
    """STREAM_STATE|ACTIVE|epoch=1 right after SESSION: in the snapshot's place, in the wrong
    form. STATE-1 FAILs it; SNAP-1 (when the snapshot comes) does not, and still FAILs a
    malformed text of another name there."""
    def snapshot(text: str) -> Trace:
        trace = Trace()
        wire = trace.wire()
        t = handshake(wire, 0.0)
        wire.p2v(t, text)
        wire.close(t + 1.0)
        return trace

    named = f"{StreamStateMessage.NAME}|{StreamState.ACTIVE.name}|epoch=1"
    assert status(snapshot(named), "STATE-1") is Status.FAIL
    assert status(snapshot(named), "SNAP-1") is Status.PASS
    assert status(snapshot("NOT A MESSAGE"), "SNAP-1") is Status.FAIL
