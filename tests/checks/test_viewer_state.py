"""The Viewer-state monitors on the situations that escaped the old checkers (issue 8).

Each test is a hand-written trace of one situation, judged by one monitor: a
correct Viewer that the old millisecond windows failed, and a broken Viewer that
the old checkers passed or never judged.
"""

from __future__ import annotations

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from reference.protocol.causes import Cause
from reference.protocol.frames import FrameType
from reference.protocol.messages import Heartbeat, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.viewer_state import frames, watched

ACTIVE, PAUSED = StreamState.ACTIVE, StreamState.PAUSED
V = ViewerState


def status(requirement: str, trace: Trace) -> Status:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    return verdict.status


def resumed(after: float) -> Trace:
    """Pause, then resume: the Viewer re-enters STREAMING `after` s after the ACTIVE."""
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    viewer.to(0.501, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1, server_state=PAUSED)
    wire.csd(1.0, 1).video(1.001, 1, key=True)
    viewer.decode(1.002, FrameType.CSD, 1).decode(1.003, FrameType.VIDEO, 1, key=True)
    wire.p2v(1.004, StreamStateMessage(state=ACTIVE, epoch=1))
    viewer.to(1.004 + after, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    wire.p2v(2.0, Heartbeat())
    return trace


def test_state_2_a_reaction_2_5_ms_after_active_passes() -> None:
    # The old ACT_AFTER = 5 ms window made exactly this correct Viewer FAIL.
    assert status("STATE-2", resumed(0.0025)) is Status.PASS
    assert status("EVT-1", resumed(0.0025)) is Status.PASS


def test_state_2_streaming_before_the_active_was_delivered_fails() -> None:
    # Causally impossible: the Viewer cannot act on a frame before its tap read it.
    assert status("STATE-2", resumed(-0.002)) is Status.FAIL


def test_a_record_stamped_with_the_frame_and_fed_before_it_still_passes() -> None:
    trace = resumed(0.0)
    records = trace.records
    frame = next(i for i, r in enumerate(records) if "STREAM_STATE|1" in str(r.get("msg")))
    entry = next(i for i, r in enumerate(records) if r.get("state") == V.STREAMING.value
                 and r["t"] > 1.0)
    records.insert(frame, records.pop(entry))  # same time, the telemetry first
    assert status("STATE-2", trace) is Status.PASS


def paused_then_recovering(after: float, *, then_leaves: bool = True) -> Trace:
    """PAUSED delivered; the Viewer's watchdog fires `after` s later, then it reads the PAUSED."""
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    viewer.to(0.5 + after, V.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    if then_leaves:
        viewer.to(0.51 + after, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1,
                  server_state=PAUSED)
    wire.p2v(2.0, Heartbeat())
    return trace


def test_state_6_recovering_while_paused_fails() -> None:
    # The Viewer's own record still says ACTIVE; its tap had said PAUSED a second before.
    assert status("STATE-6", paused_then_recovering(1.0)) is Status.FAIL


def test_state_6_a_stall_that_races_the_pause_passes_if_the_server_then_wins() -> None:
    assert status("STATE-6", paused_then_recovering(0.1)) is Status.PASS
    # ... but staying RECOVERING once it has read PAUSED is the Viewer's watchdog winning.
    assert status("STATE-6", paused_then_recovering(0.1, then_leaves=False)) is Status.FAIL


def test_state_6_a_two_transition_flap_fails() -> None:
    # STREAMING long before, frames until 0.1 s before the "stall": the old checker,
    # which measured from the STREAMING entry, passed this.
    trace = Trace()
    wire, viewer = watched(trace)
    frames(wire, viewer, 0.1, 3.0)
    viewer.to(3.05, V.RECOVERING, Cause.STALL, epoch=1, server_state=ACTIVE)
    viewer.decode(3.1, FrameType.VIDEO, 1, key=True)
    viewer.to(3.11, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    assert status("STATE-6", trace) is Status.FAIL


def test_state_6_leaving_for_the_server_state_under_active_is_a_flap() -> None:
    trace = Trace()
    _, viewer = watched(trace)
    viewer.to(1.0, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1, server_state=ACTIVE)
    viewer.to(1.01, V.STREAMING, Cause.CONDITIONS_MET, epoch=1, server_state=ACTIVE)
    assert status("STATE-6", trace) is Status.FAIL


def test_evt_1_streaming_late_fails_and_in_time_passes() -> None:
    low = 1.5  # Timings.stall_window[0]; the tolerance is 0.3 s
    assert status("EVT-1", resumed(low + 0.2)) is Status.PASS
    assert status("EVT-1", resumed(low + 0.4)) is Status.FAIL


def test_state_5_a_disconnect_blamed_on_the_pause_fails() -> None:
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    viewer.to(0.5005, V.DISCONNECTED, Cause.SERVER_STATE, epoch=1, server_state=PAUSED)
    assert status("STATE-5", trace) is Status.FAIL


def test_state_7_decoder_created_before_the_accept_fails() -> None:
    trace = Trace()
    viewer = trace.viewer()
    viewer.to(0.0, V.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.01, V.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.02, V.NEGOTIATING, Cause.AUTH_OK)
    viewer.decoder(0.021, "create", 1)
    assert status("STATE-7", trace) is Status.FAIL


def _told_version_1(streaming_at: float | None) -> Trace:
    """A version-2 Viewer told `PROTO|version=1`: version 1 confirmed at once (7.9)."""
    from reference.protocol.auth import compute_response
    from reference.protocol.messages import (
        Auth,
        AuthChallenge,
        AuthOk,
        Hello,
        Proto,
        Session,
        SetStream,
        StreamAccepted,
    )
    from tests.checks.cases.common import NONCE, SECRET

    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    wire.open(0.0)
    wire.v2p(0.001, Hello(client="viewer", version=2))
    wire.p2v(0.002, Proto(version=1))
    wire.p2v(0.003, AuthChallenge(nonce=NONCE))
    wire.v2p(0.004, Auth(response=compute_response(SECRET, NONCE)))
    wire.p2v(0.005, AuthOk()).p2v(0.006, Session(id="s1"))
    wire.v2p(0.008, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(0.009, StreamAccepted(epoch=1, width=640, height=360, fps=30))
    wire.csd(0.010, 1).video(0.011, 1, key=True)
    viewer.to(0.0, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.004, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.006, ViewerState.NEGOTIATING, Cause.AUTH_OK)
    viewer.to(0.0095, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=1)
    viewer.decoder(0.0096, "create", 1)
    viewer.decode(0.0105, FrameType.CSD, 1)
    viewer.decode(0.0115, FrameType.VIDEO, 1, key=True)
    if streaming_at is not None:
        viewer.to(streaming_at, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1)
    wire.p2v(5.0, Heartbeat())
    return trace


def test_legacy_1_proto_version_1_confirms_legacy_at_once() -> None:
    """PROTO|version=1 starts no fallback timer: inferring at once PASSes, never inferring
    FAILs (the fallback applies only when no PROTO came before AUTH_CHALLENGE)."""
    (verdict,) = Engine({"LEGACY-1": {}}).feed_all(_told_version_1(0.02).records).finish()
    assert verdict.status is Status.PASS, [e.what for e in verdict.evidence]
    (verdict,) = Engine({"LEGACY-1": {}}).feed_all(_told_version_1(None).records).finish()
    assert verdict.status is Status.FAIL


def test_legacy_1_the_fallback_runs_from_the_viewers_own_auth_ok_however_late() -> None:
    """A Viewer short of CPU reads AUTH_OK (its NEGOTIATING record) only after the tap has
    delivered the CSD and keyframe: its fallback timer starts then, so inferring 3 s after
    that PASSes. Seen under load: the deadline was set from the keyframe before the
    NEGOTIATING record arrived, and a correct Viewer FAILed."""
    from tests.checks.cases.viewer_state import VIEWER_TAP, legacy_1

    def late(streaming_at: float) -> Trace:
        trace = legacy_1(broken=False)
        trace.records = [r for r in trace.records if not (
            r.get("state") in (ViewerState.NEGOTIATING.value, ViewerState.STREAMING.value,
                               ViewerState.RECONFIGURING.value)
            or r.get("event") in ("decoder", "frame", "decoded"))]
        viewer = trace.viewer()
        viewer.to(0.05, ViewerState.NEGOTIATING, Cause.AUTH_OK)
        viewer.to(0.051, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED)
        viewer.to(streaming_at, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1)
        trace.records.sort(key=lambda r: r["t"])
        assert any(r.get("tap") == VIEWER_TAP for r in trace.records)
        return trace

    (verdict,) = Engine({"LEGACY-1": {}}).feed_all(late(3.05).records).finish()
    assert verdict.status is Status.PASS, [e.what for e in verdict.evidence]
    (verdict,) = Engine({"LEGACY-1": {}}).feed_all(late(4.9).records).finish()
    assert verdict.status is Status.FAIL  # 4.85 s after its AUTH_OK: 1.85 s after the timer


def _refused(then: str) -> Trace:
    """A Viewer refused with AUTH_FAIL; `then`: "nothing", "reconnect", or "restarted" (its user
    started a new instance, which writes a new `hello` record first)."""
    from reference.protocol.telemetry import RecordKind

    trace = Trace()
    viewer = trace.viewer()
    viewer.to(0.0, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.01, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.02, ViewerState.DISCONNECTED, Cause.AUTH_FAILED)
    if then == "restarted":
        viewer.record(5.0, RecordKind.HELLO, implementation="x", version=2)
    if then != "nothing":
        viewer.to(5.01, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
        viewer.to(5.02, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    return trace


def test_recon_1_no_automatic_reconnect_after_auth_fail() -> None:
    """PROTOCOL.md 5.1: after AUTH_FAIL the Viewer stays DISCONNECTED until its user acts."""
    expected = {"nothing": Status.PASS, "restarted": Status.PASS, "reconnect": Status.FAIL}
    for then, status in expected.items():
        (verdict,) = Engine({"RECON-1": {}}).feed_all(_refused(then).records).finish()
        assert verdict.status is status, (then, [e.what for e in verdict.evidence])


def test_state_8_an_event_ahead_of_its_state_is_announced_but_breaks_evt_2_order() -> None:
    """PAUSED told as STREAM_EVENT first and STREAM_STATE right after: the change was announced
    (STATE-8 PASS), but not in the order 7.11 asks (EVT-2, the SHOULD, FAILs). Told only as an
    event, with the next STREAM_STATE saying something else, it FAILs STATE-8."""
    from reference.protocol.messages import StreamEvent, StreamEventMessage
    from tests.checks.cases.common import accepted_stream

    def trace(then_state: StreamState) -> Trace:
        trace = Trace()
        wire = trace.wire()
        t = accepted_stream(wire, 0.0)
        wire.p2v(t + 1.0, StreamEventMessage(event=StreamEvent.PAUSED.value, epoch=1))
        wire.p2v(t + 1.0, StreamStateMessage(state=then_state, epoch=1))
        wire.p2v(t + 2.0, StreamStateMessage(state=StreamState.STOPPED, epoch=1))
        wire.p2v(t + 2.0, StreamEventMessage(event=StreamEvent.STOPPED.value, epoch=1))
        return trace

    ahead = trace(StreamState.PAUSED).records
    state_8, evt_2 = Engine({"STATE-8": {}, "EVT-2": {}}).feed_all(ahead).finish()
    assert state_8.status is Status.PASS, [e.what for e in state_8.evidence]
    assert evt_2.status is Status.FAIL
    (state_8,) = Engine({"STATE-8": {}}).feed_all(trace(StreamState.ACTIVE).records).finish()
    assert state_8.status is Status.FAIL
