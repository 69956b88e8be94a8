"""SNAP-2 against an external Primary's sampled reports (GET /status, PROTOCOL.md 15.2).

Polled at intervals, the reports can miss a state held for less than one: a Primary
that started in RECONFIGURING epoch 1 for 50 ms between two polls sent a true snapshot
of it; what it announced on another connection must then count as truth too.
"""

from __future__ import annotations

from harness.checks.registry import run_checks
from harness.checks.verdict import Status
from reference.protocol.messages import StreamStateMessage
from reference.protocol.states import StreamState
from tests.checks.builder import Trace
from tests.checks.cases.common import handshake

ACTIVE, RECONF = StreamState.ACTIVE, StreamState.RECONFIGURING


def _trace(sampled: bool, snapshot: StreamState) -> Trace:
    trace = Trace()
    first = trace.wire(conn="c1")
    t = handshake(first, 0.0)
    first.p2v(t, StreamStateMessage(state=RECONF, epoch=1))  # announced: the missed state
    second = trace.wire(conn="c2")
    t2 = handshake(second, 1.0)
    second.p2v(t2, StreamStateMessage(state=snapshot, epoch=1))
    trace.primary(t2 + 0.05, ACTIVE, 1)  # the first answer to GET /status
    if sampled:
        trace.records[-1]["sampled"] = True
    second.video(t2 + 2.0, 1)  # the trace goes on past the comparison
    return trace


def _snap_2(trace: Trace) -> Status:
    [verdict] = [v for v in run_checks(trace.records, {"SNAP-2": {}}) if v.requirement == "SNAP-2"]
    return verdict.status


def test_a_state_the_samples_missed_is_taken_from_the_other_connections() -> None:
    assert _snap_2(_trace(sampled=True, snapshot=RECONF)) is Status.PASS
    assert _snap_2(_trace(sampled=True, snapshot=ACTIVE)) is Status.PASS
    # A snapshot neither the reports nor the other connections bear out still FAILs.
    assert _snap_2(_trace(sampled=True, snapshot=StreamState.PAUSED)) is Status.FAIL


def test_a_complete_report_stays_the_only_truth() -> None:
    """The reference Primary reports every change: its reports alone are the truth."""
    assert _snap_2(_trace(sampled=False, snapshot=RECONF)) is Status.FAIL


def _restarted(snapshot: StreamState) -> Trace:
    """A Primary restarted: its old life said ACTIVE; the new one starts in RECONFIGURING
    and its first sample (after the Viewer's snapshot) says ACTIVE."""
    trace = Trace()
    old = trace.wire(conn="c1")
    t = handshake(old, 0.0)
    old.p2v(t, StreamStateMessage(state=ACTIVE, epoch=1))
    trace.primary(t + 0.05, ACTIVE, 1)
    trace.records[-1]["sampled"] = True
    old.close(t + 1.0)
    trace.action(t + 1.0, "restart_primary")
    new = trace.wire(conn="c2")
    t2 = handshake(new, t + 2.0)
    new.p2v(t2, StreamStateMessage(state=snapshot, epoch=1))
    trace.primary(t2 + 0.1, ACTIVE, 1)
    trace.records[-1]["sampled"] = True
    new.video(t2 + 2.0, 1)
    return trace


def test_after_a_restart_the_old_life_and_a_late_first_sample_refute_nothing() -> None:
    """The new Primary's first sample came after the snapshot: RECONFIGURING then is true
    for all the harness knows (certifying the reference Primary: primary-restart)."""
    assert _snap_2(_restarted(RECONF)) is not Status.FAIL
    assert _snap_2(_restarted(ACTIVE)) is Status.PASS
