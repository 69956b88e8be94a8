"""The client in the background (PROTOCOL.md 7.12): the monitors judge it, and only it.

A conforming Viewer that goes to the background gets no FAIL from any monitor; the
rules the background changes (WD-1, WD-2, STATE-6, EVT-1) still FAIL a Viewer that
breaks them around a background, each in a pair with the conforming twin.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from reference.protocol.causes import Cause
from reference.protocol.frames import FrameType
from reference.protocol.messages import ReqKeyframe, StreamStateMessage
from reference.protocol.requirements import BY_ID
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, streaming_viewer

ACTIVE = StreamState.ACTIVE
FPS = 1 / 30


def judge(requirement: str, trace: Trace) -> tuple[Status, str]:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    return verdict.status, f"{verdict.summary}: {'; '.join(e.what for e in verdict.evidence)}"


def test_a_conforming_viewer_in_the_background_fails_nothing(sim: Any) -> None:
    """Background while streaming, a pause and a resume in it, foreground; then a background
    whose foreground request goes unanswered (the retry schedule and a reconnect)."""
    lb, rec = sim()
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(3.0, picture_interval=FPS)
    lb.viewer.set_background(True, lb.now)
    lb.run_until(6.0, picture_interval=FPS)
    lb.primary.stream.transition(StreamState.PAUSED, lb.now)
    lb.primary.broadcast_state(lb.now)
    lb.run_until(8.0)
    lb.primary.go_active(lb.now)
    lb.run_until(12.0, picture_interval=FPS)
    lb.viewer.set_background(False, lb.now)
    lb.run_until(15.0, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.STREAMING
    lb.viewer.set_background(True, lb.now)
    lb.run_until(18.0, picture_interval=FPS)
    lb.primary.answer_keyframe_requests = False
    lb.viewer.set_background(False, lb.now)
    lb.run_until(25.0, picture_interval=FPS)  # six requests unanswered: a reconnect
    lb.primary.answer_keyframe_requests = True
    lb.run_until(32.0, picture_interval=FPS)
    assert lb.viewer.state is ViewerState.STREAMING
    engine = Engine({i: {"secret": "s3cret"} for i in BY_ID})
    results = {v.requirement: v for v in engine.feed_all(rec.trace().records).finish()}
    # The Primary that ignores the requests breaks KEY-2 on purpose; that is its FAIL.
    failures = {k: v for k, v in results.items() if v.status is Status.FAIL and k != "KEY-2"}
    assert results["KEY-2"].status is Status.FAIL
    assert not failures, "\n".join(f"{k}: {v.summary} {v.evidence}" for k, v in failures.items())
    for must in ("WD-2", "WD-3", "STATE-6", "EVT-1"):
        assert results[must].status is Status.PASS, (must, results[must].summary)


def _backgrounded(cause: Cause, after: float) -> Trace:
    """Streaming, the last picture at t+0.5, then RECOVERING `after` s later with `cause`."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    viewer.decoded(t + 0.5, 1)
    at = t + 0.5 + after
    viewer.to(at, ViewerState.RECOVERING, cause, epoch=1, server_state=ACTIVE)
    trace.action(at + 4.0, "note")
    return trace


@pytest.mark.parametrize(("broken", "cause", "after"), [
    (False, Cause.CLIENT_BACKGROUND, 0.3),  # the app left: no stall, no request expected
    (True, Cause.STALL, 0.3),  # the same moment called a stall: too soon, and no request
    (True, Cause.CLIENT_BACKGROUND, 3.2),  # a stall missed before the background
])
def test_wd_1_background_is_no_stall(broken: bool, cause: Cause, after: float) -> None:
    status, why = judge("WD-1", _backgrounded(cause, after))
    assert status is (Status.FAIL if broken else Status.PASS), why


@pytest.mark.parametrize("broken", [False, True])
def test_wd_2_judges_a_background_recovery_from_its_first_request(broken: bool) -> None:
    """Nothing for 4 s in the background, then T, T+1, ...; the broken Viewer's second
    request comes 2.5 s after the first."""
    trace = _backgrounded(Cause.CLIENT_BACKGROUND, 0.3)
    wire, viewer = trace.wire("viewer_side:v1"), trace.viewer()
    viewer.state = ViewerState.RECOVERING
    back = 5.0
    gaps = [0.0, 2.5, 1.0] if broken else [0.0, 1.0, 1.0]
    t = back
    for attempt, gap in enumerate(gaps):
        t += gap
        viewer.keyframe_request(t, 1, attempt)
        wire.v2p(t + 0.001, ReqKeyframe(epoch=1))
    wire.video(t + 0.2, 1, key=True)
    viewer.decode(t + 0.21, FrameType.VIDEO, 1, key=True).decoded(t + 0.22, 1, key=True)
    viewer.to(t + 0.23, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1,
              server_state=ACTIVE)
    status, why = judge("WD-2", trace)
    assert status is (Status.FAIL if broken else Status.PASS), why


@pytest.mark.parametrize("broken", [False, True])
def test_state_6_a_background_justifies_leaving_streaming(broken: bool) -> None:
    """Leave STREAMING and come back 3 s later; the broken Viewer names no reason for it."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    t = accepted_stream(wire, 0.0)
    streaming_viewer(viewer, 0.0)
    for i in range(10):
        viewer.decode(t + 0.1 + i * FPS, FrameType.VIDEO, 1)
    cause = Cause.CONDITIONS_MET if broken else Cause.CLIENT_BACKGROUND
    viewer.to(t + 0.5, ViewerState.RECOVERING, cause, epoch=1, server_state=ACTIVE)
    viewer.keyframe_request(t + 3.5, 1, 0)
    wire.v2p(t + 3.501, ReqKeyframe(epoch=1))
    wire.video(t + 3.6, 1, key=True)
    viewer.decode(t + 3.61, FrameType.VIDEO, 1, key=True).decoded(t + 3.62, 1, key=True)
    viewer.to(t + 3.63, ViewerState.STREAMING, Cause.CONDITIONS_MET, epoch=1,
              server_state=ACTIVE)
    status, why = judge("STATE-6", trace)
    assert status is (Status.FAIL if broken else Status.PASS), why


@pytest.mark.parametrize("broken", [False, True])
def test_evt_1_a_viewer_in_the_background_need_not_stream(broken: bool) -> None:
    """Joined in the background: ACTIVE, CSD and keyframe delivered, never STREAMING. The
    conforming Viewer drops the video as `in_background`; the broken one just sits there."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    viewer = trace.viewer()
    viewer.to(0.0, ViewerState.SOCKET_CONNECTED, Cause.TCP_CONNECTED)
    viewer.to(0.01, ViewerState.AUTHENTICATING, Cause.AUTH_CHALLENGE)
    viewer.to(0.02, ViewerState.NEGOTIATING, Cause.AUTH_OK, server_state=ACTIVE, epoch=1)
    t = accepted_stream(wire, 0.0)
    viewer.to(t, ViewerState.RECONFIGURING, Cause.STREAM_ACCEPTED, epoch=1, server_state=ACTIVE)
    viewer.decoder(t + 0.001, "create", 1)
    viewer.decode(t + 0.002, FrameType.CSD, 1)
    if not broken:
        viewer.to(t + 0.003, ViewerState.RECOVERING, Cause.CLIENT_BACKGROUND, epoch=1,
                  server_state=ACTIVE)
        viewer.drop(t + 0.004, FrameType.VIDEO, 1, Cause.IN_BACKGROUND, 1)
    wire.p2v(t + 1.0, StreamStateMessage(state=ACTIVE, epoch=1))
    trace.action(t + 4.0, "note")
    status, why = judge("EVT-1", trace)
    assert status is (Status.FAIL if broken else Status.PASS), why
