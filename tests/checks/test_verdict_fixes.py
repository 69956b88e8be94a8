"""Regression traces for verdicts a certification of independent peers showed wrong.

Each test is a hand-written trace (tests/checks/builder.py) of the situation in
tests/independent/FINDINGS.md (branch `independent`), judged by one monitor:
a correct peer that the old monitor FAILed must PASS (or go unjudged), and the
fault next to it must still FAIL.
"""

from __future__ import annotations

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from reference.protocol.causes import Cause
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind
from tests.checks.builder import Trace
from tests.checks.cases.common import streaming_viewer

ACTIVE = StreamState.ACTIVE


def judge(requirement: str, trace: Trace) -> tuple[Status, str]:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    evidence = "; ".join(e.what for e in verdict.evidence)
    return verdict.status, f"{verdict.summary}: {evidence}"


# --- F2b: RECON-1 measures the backoff from the earliest evidence of the disconnect --------


def _late_disconnected_record(delay: float, *, tap: bool) -> Trace:
    """The Viewer closes at t (its tap sees its EOF, or it writes `connection closed`),
    writes DISCONNECTED 51 ms later, and reconnects `delay` after the close."""
    trace = Trace()
    viewer = trace.viewer()
    wire = trace.wire("viewer_side:v1")
    wire.open(0.0)
    t = streaming_viewer(viewer, 0.001) + 1.0
    if tap:
        wire.half_close(t, "client")
    else:
        viewer.record(t, RecordKind.CONNECTION, action="closed", reason="heartbeat timeout")
    viewer.to(t + 0.051, ViewerState.DISCONNECTED, Cause.HEARTBEAT_TIMEOUT, epoch=1,
              server_state=ACTIVE)
    viewer.decoder(t + 0.052, "release")
    wire.close(t + 0.06)
    streaming_viewer(viewer, t + delay)
    return trace


def test_recon1_measures_from_the_connection_closed_record() -> None:
    """Old: 0.159 s after the close but 0.108 s after the late DISCONNECTED record: FAIL."""
    status, why = judge("RECON-1", _late_disconnected_record(0.159, tap=False))
    assert status is Status.PASS, why


def test_recon1_measures_from_the_viewers_close_on_its_tap() -> None:
    status, why = judge("RECON-1", _late_disconnected_record(0.159, tap=True))
    assert status is Status.PASS, why


def test_recon1_still_fails_a_reconnect_without_backoff_after_the_close() -> None:
    status, why = judge("RECON-1", _late_disconnected_record(0.09, tap=False))
    assert status is Status.FAIL, why
    assert "0.09 s after" in why, why
