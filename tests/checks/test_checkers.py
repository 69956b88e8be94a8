"""Every checker passes conforming peers and fails the peer that breaks its rule."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks.registry import run_checks
from harness.checks.verdict import Status, Verdict
from harness.trace import Trace, load
from reference.protocol.deviations import BREAKS, PRIMARY_DEVIATIONS, Deviation
from reference.protocol.frames import Frame, FrameType
from reference.protocol.messages import StreamEventMessage, StreamStateMessage
from reference.protocol.requirements import BY_ID
from reference.protocol.states import StreamState

FPS = 1 / 30


def verdicts(trace: Trace, ids: list[str] | None = None, **params: Any) -> dict[str, Verdict]:
    wanted = {i: params for i in (ids or list(BY_ID))}
    return {v.requirement: v for v in run_checks(trace.records, wanted)}


def busy_life(sim: Any, **kwargs: Any) -> Trace:
    """Connect, stream, reconfigure, pause, resume, stall and recover, lose the Primary."""
    lb, rec = sim(**kwargs)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(3.0, picture_interval=FPS)
    lb.primary.reconfigure(lb.now)
    lb.run_until(6.0, picture_interval=FPS)
    lb.primary.stream.transition(StreamState.PAUSED, lb.now)
    lb.primary.broadcast_state(lb.now)
    lb.run_until(12.0)
    lb.primary.go_active(lb.now)
    lb.run_until(14.0, picture_interval=FPS)
    lb.run_until(17.0)  # a stall the Primary answers
    lb.run_until(19.0, picture_interval=FPS)
    lb.primary_silent = True  # heartbeat loss: the Viewer reconnects
    lb.run_until(26.0)
    lb.primary_silent = False  # the reconnect's handshake was lost too: AUTH-3 closes it
    lb.run_until(40.0, picture_interval=FPS)
    assert lb.viewer.state.value == "STREAMING"
    return rec.trace()


def test_conforming_peers_fail_nothing(sim: Any) -> None:
    results = verdicts(busy_life(sim), secret="s3cret")
    failures = {k: v for k, v in results.items() if v.status is Status.FAIL}
    assert not failures, "\n".join(f"{k}: {v.summary} {v.evidence}" for k, v in failures.items())
    passed = {k for k, v in results.items() if v.status is Status.PASS}
    # The busy life exercises most rules; the rest need their own situations.
    for must in ("SNAP-1", "SNAP-2", "SNAP-3", "KEY-1", "KEY-2", "KEY-3", "EPOCH-1", "EPOCH-2",
                 "EPOCH-3", "WD-1", "WD-3", "HB-1", "HB-2", "STATE-3", "STATE-4", "STATE-5",
                 "STATE-7", "RECON-1", "EVT-1", "NEG-1", "AUTH-1", "VER-1", "VER-2"):
        assert must in passed, f"{must}: {results[must].status} {results[must].summary}"


@pytest.mark.parametrize("deviation", [
    Deviation.NO_SNAPSHOT, Deviation.NO_EPOCH_DROP, Deviation.EVENTS_AS_STATE,
    Deviation.STALE_CONTROL_APPLIED, Deviation.NO_KEYFRAME_RETRY,
    Deviation.SELF_DECLARED_STREAMING, Deviation.SLOW_HEARTBEAT, Deviation.STALE_MEDIA_EPOCH,
    Deviation.NO_LIVENESS_TIMEOUT, Deviation.LATE_STALL_WATCHDOG, Deviation.RECONNECT_TOO_SOON,
    Deviation.NO_STREAM_EVENTS,
])
def test_each_deviation_fails_its_requirement(sim: Any, deviation: Deviation) -> None:
    is_primary = deviation in PRIMARY_DEVIATIONS
    lb, rec = sim(**{("primary_deviations" if is_primary else "viewer_deviations"):
                     frozenset({deviation})})
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(2.0, picture_interval=FPS)
    if deviation is Deviation.NO_EPOCH_DROP:
        lb.primary.reconfigure(lb.now)
        lb.run_until(2.5, picture_interval=FPS)
        lb.inject_to_viewer(_frame(Frame(FrameType.VIDEO, b"old", epoch=1)))
        lb.pump()
    elif deviation is Deviation.EVENTS_AS_STATE:
        lb.inject_to_viewer(_control(StreamEventMessage("RECONFIG_STARTED", 1)))
        lb.pump()
        lb.run_until(4.0)
    elif deviation is Deviation.STALE_CONTROL_APPLIED:
        lb.primary.reconfigure(lb.now)
        lb.run_until(2.5, picture_interval=FPS)
        lb.inject_to_viewer(_control(StreamStateMessage(StreamState.RECONFIGURING, 1)))
        lb.pump()
    elif deviation is Deviation.NO_KEYFRAME_RETRY:
        # The Primary answers every request, but the network eats all video.
        lb.viewer_bound_filter = lambda f: [] if f.type is FrameType.VIDEO else [f]
        lb.run_until(12.0, picture_interval=FPS)
    elif deviation is Deviation.SELF_DECLARED_STREAMING:
        lb.primary.stream.transition(StreamState.PAUSED, lb.now)
        lb.primary.broadcast_state(lb.now)
        lb.pump()
        lb.inject_to_viewer(_frame(Frame(FrameType.CSD, b"c", epoch=1)))
        lb.inject_to_viewer(_frame(Frame(FrameType.VIDEO, b"k", epoch=1, flags=1)))  # type: ignore[arg-type]
        lb.pump()
        lb.run_until(2.5)
        lb.primary.broadcast_state(lb.now)  # the truth again: a record past the leave deadline
        lb.pump()
        lb.run_until(3.0)
    elif deviation in (Deviation.SLOW_HEARTBEAT, Deviation.STALE_MEDIA_EPOCH):
        lb.run_until(9.0, picture_interval=FPS)
    elif deviation in (Deviation.NO_LIVENESS_TIMEOUT, Deviation.RECONNECT_TOO_SOON):
        lb.primary_silent = True  # the Primary goes quiet: the Viewer must declare it dead
        lb.run_until(16.0)
        lb.primary_silent = False
        lb.run_until(20.0, picture_interval=FPS)
    elif deviation is Deviation.NO_STREAM_EVENTS:
        lb.primary.reconfigure(lb.now)  # RECONFIGURING then ACTIVE: two changes, no events
        lb.run_until(4.0, picture_interval=FPS)
    elif deviation is Deviation.LATE_STALL_WATCHDOG:
        lb.viewer_bound_filter = lambda f: [] if f.type is FrameType.VIDEO else [f]
        lb.run_until(7.0, picture_interval=FPS)
    results = verdicts(rec.trace())
    failed = {k for k, v in results.items() if v.status is Status.FAIL}
    assert failed == set(BREAKS[deviation]), {k: results[k].evidence for k in failed}
    for requirement in BREAKS[deviation]:
        assert results[requirement].evidence


def _frame(frame: Frame) -> bytes:
    from reference.protocol.frames import encode_frame

    return encode_frame(frame)


def _control(message: Any) -> bytes:
    return _frame(Frame(FrameType.CONTROL, message.encode()))


def test_wd_2_counts_retries_and_the_reconnect(sim: Any) -> None:
    lb, rec = sim()
    lb.primary.start(0.0)
    lb.primary.answer_keyframe_requests = False
    lb.connect()
    lb.run_until(1.0, picture_interval=FPS)
    lb.run_until(11.0)
    results = verdicts(rec.trace(), ["WD-1", "WD-2", "RECON-1"])
    assert results["WD-1"].status is Status.PASS
    assert results["WD-2"].status is Status.PASS, results["WD-2"].evidence
    assert results["RECON-1"].status is Status.PASS


def test_key_2_fails_when_requests_go_unanswered(sim: Any) -> None:
    lb, rec = sim()
    lb.primary.start(0.0)
    lb.primary.answer_keyframe_requests = False
    lb.connect()
    lb.run_until(1.0, picture_interval=FPS)
    lb.run_until(6.0)  # the stall at 3 s sends requests nobody answers
    results = verdicts(rec.trace(), ["KEY-2"])
    assert results["KEY-2"].status is Status.FAIL


def test_not_observed_when_the_trace_cannot_decide() -> None:
    empty = load([])
    results = verdicts(empty)
    assert {v.status for v in results.values()} == {Status.NOT_OBSERVED}


def test_wrong_secret_and_auth_rules(sim: Any) -> None:
    lb, rec = sim(viewer_secret="wrong")
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(3.0, picture_interval=FPS)
    results = verdicts(rec.trace(), ["AUTH-2", "AUTH-1", "NEG-1"], secret="s3cret")
    assert results["AUTH-2"].status is Status.PASS
    assert results["AUTH-1"].status is Status.PASS


def test_version_one_primary_legacy_rules(sim: Any) -> None:
    lb, rec = sim(primary_version=1)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(5.0, picture_interval=FPS)
    results = verdicts(rec.trace(), ["LEGACY-1", "VER-2", "VER-4"], primary_version=1)
    assert results["LEGACY-1"].status is Status.PASS, results["LEGACY-1"].evidence
    assert results["VER-2"].status is Status.PASS


def test_version_one_viewer_legacy_2(sim: Any) -> None:
    lb, rec = sim(viewer_version=1)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(3.0, picture_interval=FPS)
    results = verdicts(rec.trace(), ["LEGACY-2"])
    assert results["LEGACY-2"].status is Status.PASS


def _viewer_state_deviation(sim: Any, deviation: Deviation) -> Trace:
    """The smallest life in which each Viewer-state deviation shows (issue 8 item 7)."""
    primary_version = 1 if deviation is Deviation.NO_LEGACY_INFERENCE else 2
    lb, rec = sim(viewer_deviations=frozenset({deviation}), primary_version=primary_version)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(2.0, picture_interval=FPS)
    if deviation is Deviation.FLAP_ON_KEYFRAME:
        for conn in lb.primary.live():  # a keyframe mid-stream (a new GOP): the Viewer flaps
            lb.primary.send_keyframe(conn, lb.now)
        lb.run_until(4.0, picture_interval=FPS)
    elif deviation in (Deviation.WATCHDOG_WHILE_PAUSED, Deviation.RECONNECT_ON_PAUSE):
        # A request under PAUSED goes unanswered, so WD-3 has no keyframe to judge.
        lb.primary.answer_keyframe_requests = False
        lb.primary.stream.transition(StreamState.PAUSED, lb.now)
        lb.primary.broadcast_state(lb.now)
        lb.run_until(6.0)
    elif deviation is Deviation.NO_DECODER_FLUSH:
        lb.primary.reconfigure(lb.now)
        lb.run_until(4.0, picture_interval=FPS)
    elif deviation is Deviation.KEEPS_DECODER:
        lb.primary_silent = True  # heartbeat loss: the Viewer disconnects and reconnects
        lb.run_until(9.0)
        lb.primary_silent = False
        lb.run_until(14.0, picture_interval=FPS)
    else:
        lb.run_until(6.0, picture_interval=FPS)
    return rec.trace()


@pytest.mark.parametrize("deviation", [
    Deviation.IGNORES_SNAPSHOT, Deviation.FLAP_ON_KEYFRAME, Deviation.WATCHDOG_WHILE_PAUSED,
    Deviation.NO_DECODER_FLUSH, Deviation.KEEPS_DECODER, Deviation.RECONNECT_ON_PAUSE,
    Deviation.INFER_ON_V2, Deviation.NO_LEGACY_INFERENCE,
])
def test_each_viewer_state_deviation_fails_exactly_its_requirement(
    sim: Any, deviation: Deviation
) -> None:
    results = verdicts(_viewer_state_deviation(sim, deviation), secret="s3cret")
    failed = {k for k, v in results.items() if v.status is Status.FAIL}
    assert failed == set(BREAKS[deviation]), {k: results[k].evidence for k in failed}
    for requirement in BREAKS[deviation]:
        assert results[requirement].evidence
