"""The client in the background (PROTOCOL.md 7.12, the seed's CLIENT_BG), on the virtual clock."""

from __future__ import annotations

import pytest

from reference.loopback import Loopback
from reference.protocol.causes import Cause
from reference.protocol.events import FrameDropped, KeyframeRequestSent, StateChanged
from reference.protocol.frames import FrameType
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.timings import DEFAULT_TIMINGS

FPS = 1 / 30


def streaming() -> Loopback:
    lb = Loopback()
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(2.0, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.STREAMING
    return lb


def changes(lb: Loopback, since: float) -> list[StateChanged]:
    return [e for t, e in lb.events_of(StateChanged) if t >= since]  # type: ignore[misc]


def requests(lb: Loopback, since: float) -> list[tuple[float, KeyframeRequestSent]]:
    return [(t, e) for t, e in lb.events_of(KeyframeRequestSent) if t >= since]  # type: ignore[misc]


def test_background_leaves_streaming_for_recovering_and_asks_for_nothing() -> None:
    lb = streaming()
    lb.viewer.set_background(True, lb.now)
    lb.pump()
    (entered,) = changes(lb, 2.0)
    assert (entered.previous, entered.state, entered.cause) == (
        ViewerState.STREAMING, ViewerState.RECOVERING, Cause.CLIENT_BACKGROUND
    )
    assert not lb.viewer.surface_ready
    # Longer than the stall timeout, the retry schedule and the heartbeat timeout together.
    lb.run_until(14.0, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.RECOVERING
    assert len(changes(lb, 2.0)) == 1, "no stall, no reconnect, no flap while in the background"
    assert not requests(lb, 2.0)
    dropped = [e for t, e in lb.events_of(FrameDropped) if t > 2.0]
    assert dropped and all(
        e.cause is Cause.IN_BACKGROUND and e.frame.type is FrameType.VIDEO  # type: ignore[attr-defined]
        for e in dropped
    )


def test_foreground_requests_a_keyframe_at_once_and_streams_again() -> None:
    lb = streaming()
    lb.viewer.set_background(True, lb.now)
    lb.run_until(6.0, picture_interval=FPS)
    lb.viewer.set_background(False, lb.now)
    lb.run_until(6.5, picture_interval=FPS)
    ((t, first), *_) = requests(lb, 6.0)
    assert t == 6.0 and first.attempt == 0 and first.epoch == lb.viewer.epoch
    back = changes(lb, 6.0)
    assert [(c.state, c.cause) for c in back] == [(ViewerState.STREAMING, Cause.CONDITIONS_MET)]


def test_foreground_runs_the_retry_schedule_then_reconnects() -> None:
    """WD-2 from the first request after the foreground: T, T+1, ..., T+5, give up at T+6."""
    lb = streaming()
    lb.primary.answer_keyframe_requests = False
    lb.viewer.set_background(True, lb.now)
    lb.run_until(5.0, picture_interval=FPS)
    lb.viewer.set_background(False, lb.now)
    lb.run_until(12.5, picture_interval=FPS)
    sent = requests(lb, 5.0)
    interval = DEFAULT_TIMINGS.keyframe_retry_interval
    assert [t for t, _ in sent] == pytest.approx(
        [5.0 + interval * i for i in range(DEFAULT_TIMINGS.keyframe_retries + 1)]
    )
    assert [e.attempt for _, e in sent] == list(range(DEFAULT_TIMINGS.keyframe_retries + 1))
    gave_up = next(c for c in changes(lb, 5.0) if c.state is ViewerState.DISCONNECTED)
    assert gave_up.cause is Cause.KEYFRAME_RETRIES_EXHAUSTED


def test_server_state_still_wins_in_the_background() -> None:
    lb = streaming()
    lb.viewer.set_background(True, lb.now)
    lb.primary.stream.transition(StreamState.PAUSED, lb.now)
    lb.primary.broadcast_state(lb.now)
    lb.run_until(4.0)
    assert lb.viewer.state is ViewerState.RECONFIGURING
    lb.primary.go_active(lb.now)
    lb.run_until(9.0, picture_interval=FPS)
    # ACTIVE again, still in the background: RECOVERING, and no stall or request.
    assert [(c.state, c.cause) for c in changes(lb, 2.0)] == [
        (ViewerState.RECOVERING, Cause.CLIENT_BACKGROUND),
        (ViewerState.RECONFIGURING, Cause.SERVER_STATE),
        (ViewerState.RECOVERING, Cause.CLIENT_BACKGROUND),
    ]
    assert not requests(lb, 2.0)


def test_background_before_connecting_never_streams_until_the_foreground() -> None:
    lb = Loopback()
    lb.viewer.set_background(True, 0.0)
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(5.0, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.RECOVERING
    assert ViewerState.STREAMING not in {c.state for c in changes(lb, 0.0)}
    lb.viewer.set_background(False, lb.now)
    lb.run_until(5.5, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.STREAMING


def test_a_stall_recovery_keeps_its_schedule_in_the_background() -> None:
    lb = streaming()
    lb.primary.answer_keyframe_requests = False
    lb.run_until(4.5)  # no pictures: the stall fires about 2 s after the last one
    assert lb.viewer.state is ViewerState.RECOVERING
    stalled = requests(lb, 2.0)[0][0]
    lb.viewer.set_background(True, lb.now)
    lb.viewer.set_background(False, lb.now + 0.1)
    lb.run_until(stalled + 5.5)
    sent = [t for t, _ in requests(lb, 2.0)]
    assert sent == pytest.approx([stalled + i for i in range(6)])
