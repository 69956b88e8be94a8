"""Deadlines measured in the time the peers could run (harness/cpu_wait.py, cpu_ledger.py).

A correct Viewer that reacts late only because the host kept it from a CPU
passes; one that reacts later than the measured wait explains, or never, still
fails. The sampler is tested on real threads and a real process made to share
one core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from harness.checks.cpu_ledger import CpuLedger
from harness.checks.engine import Engine
from harness.checks.verdict import Status
from harness.cpu_wait import KIND, CpuWaitSampler, supported
from harness.trace import Record
from reference.protocol.causes import Cause
from reference.protocol.messages import Heartbeat, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, challenged
from tests.checks.cases.viewer_state import watched
from tests.checks.test_viewer_state import resumed

PAUSED = StreamState.PAUSED
V = ViewerState


def waited(trace: Trace, since: float, until: float, wait: float, period: float = 0.1) -> Trace:
    """`cpu_wait` records spreading `wait` seconds evenly over [since, until]."""
    steps = max(1, round((until - since) / period))
    span = (until - since) / steps
    for i in range(steps):
        start = since + i * span
        trace.add({"t": start + span, "kind": KIND, "since": start, "wait": wait / steps,
                   "threads": 4})
    trace.records.sort(key=lambda r: r["t"])
    return trace


def ended(trace: Trace, t: float = 6.0) -> Trace:
    """The trace goes on until `t`: every deadline before it is judged."""
    trace.add({"t": t, "kind": "note", "text": "end of the trace"})
    return trace


def status(requirement: str, trace: Trace) -> Status:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    return verdict.status


def evidence(requirement: str, trace: Trace) -> str:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    return " ".join(e.what for e in verdict.evidence)


# --- the ledger ------------------------------------------------------------------------

def test_ledger_spreads_each_period_and_never_excuses_more_than_the_window() -> None:
    ledger = CpuLedger()
    ledger.add({"t": 1.1, "kind": KIND, "since": 1.0, "wait": 0.05})
    ledger.add({"t": 1.2, "kind": KIND, "since": 1.1, "wait": 0.1})
    assert ledger.wait(1.0, 1.2) == pytest.approx(0.15)
    assert ledger.wait(1.05, 1.15) == pytest.approx(0.025 + 0.05)
    assert ledger.wait(0.0, 1.0) == 0.0
    assert ledger.wait(1.15, 1.16) == pytest.approx(0.01)  # fully waiting: the whole window
    assert ledger.wait(1.2, 5.0) == 0.0


def test_ledger_lag_grows_by_the_wait_inside_it_and_ages_out() -> None:
    ledger = CpuLedger()
    assert ledger.lag(10.0, 0.3) == 0.3
    for i in range(100):  # half of every period waiting, from 0 to 10 s
        ledger.add({"t": (i + 1) * 0.1, "kind": KIND, "since": i * 0.1, "wait": 0.05})
    # allowed = 0.3 + allowed / 2 -> 0.6 at the fixed point
    assert ledger.lag(10.0, 0.3) == pytest.approx(0.6, abs=0.01)
    ledger.add({"t": 500.0, "kind": KIND, "since": 499.9, "wait": 0.01})
    assert ledger.wait(0.0, 10.0) == 0.0  # older than KEEP: forgotten


def test_ledger_takes_the_period_not_yet_written_to_wait_as_the_last_did() -> None:
    ledger = CpuLedger()
    ledger.add({"t": 1.1, "kind": KIND, "since": 1.0, "wait": 0.05})
    assert ledger.wait(1.0, 1.15) == pytest.approx(0.075)  # half of the next period
    assert ledger.wait(1.0, 1.3) == pytest.approx(0.15)  # two periods at most
    assert ledger.wait(1.0, 1.4) == pytest.approx(0.05)  # then: the sampler saw no wait


def test_ledger_ignores_periods_out_of_order_and_empty_ones() -> None:
    ledger = CpuLedger()
    ledger.add({"t": 2.0, "kind": KIND, "since": 1.9, "wait": 0.05})
    ledger.add({"t": 1.0, "kind": KIND, "since": 0.9, "wait": 0.05})
    ledger.add({"t": 3.0, "kind": KIND, "since": 3.0, "wait": 0.05})
    assert ledger.wait(0.0, 5.0) == pytest.approx(0.05)


# --- monitors judged on CPU time ---------------------------------------------------------

def test_evt_1_late_by_less_than_the_measured_wait_is_inconclusive() -> None:
    low = 1.5  # stall_window[0]; with the 0.3 s tolerance the deadline is 1.8 s after
    assert status("EVT-1", ended(resumed(low + 0.2))) is Status.PASS
    assert status("EVT-1", ended(resumed(low + 0.4))) is Status.FAIL
    excused = ended(waited(resumed(low + 0.4), 1.0, 2.9, 0.2))
    assert status("EVT-1", excused) is Status.INCONCLUSIVE
    assert "the host kept the peers from a CPU" in evidence("EVT-1", excused)


def test_evt_1_late_by_more_than_the_measured_wait_still_fails() -> None:
    trace = ended(waited(resumed(1.5 + 0.4), 1.0, 2.9, 0.05))
    assert status("EVT-1", trace) is Status.FAIL


def test_a_viewer_that_never_reacts_fails_however_starved_the_host() -> None:
    trace = Trace()
    wire, viewer = watched(trace)
    wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
    for i in range(1, 20):
        wire.p2v(0.5 + i * 0.5, Heartbeat())
    waited(trace, 0.5, 10.0, 4.0)  # 40 % of the time waiting
    assert status("STATE-2", trace) is Status.FAIL
    viewer.to(9.0, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1, server_state=PAUSED)
    trace.records.sort(key=lambda r: r["t"])
    assert status("STATE-2", trace) is Status.FAIL  # 8.5 s late: far beyond the wait
    assert "waiting for a CPU, not counted" in evidence("STATE-2", trace)


def test_state_2_leaving_late_within_the_wait_is_inconclusive() -> None:
    def paused(after: float) -> Trace:
        trace = Trace()
        wire, viewer = watched(trace)
        wire.p2v(0.5, StreamStateMessage(state=PAUSED, epoch=1))
        viewer.to(0.5 + after, V.RECONFIGURING, Cause.SERVER_STATE, epoch=1,
                  server_state=PAUSED)
        wire.p2v(2.0, Heartbeat())
        return trace

    assert status("STATE-2", paused(0.1)) is Status.PASS
    assert status("STATE-2", paused(0.6)) is Status.FAIL
    assert status("STATE-2", waited(paused(0.6), 0.5, 1.2, 0.4)) is Status.INCONCLUSIVE


def test_a_heartbeat_late_beyond_the_wait_fails_and_within_it_is_inconclusive() -> None:
    def beats(gap: float) -> Trace:
        trace = Trace()
        wire = trace.wire()  # the Primary's tap: the Primary's heartbeats are judged
        t = accepted_stream(wire, 0.0)
        for i in range(1, 4):
            wire.p2v(t + i * gap, Heartbeat())
        return trace

    assert status("HB-1", beats(2.0)) is Status.PASS
    slow = 3.2  # the slow_heartbeat deviation: 1.6 intervals, 0.9 s over 2 s + 0.3 s
    assert status("HB-1", beats(slow)) is Status.FAIL
    # A host as loaded as the shared CI machine (a third of each window waiting) excuses
    # every gap: INCONCLUSIVE, never PASS.
    assert status("HB-1", waited(beats(slow), 0.0, 3 * slow, 0.3 * 3 * slow)) is (
        Status.INCONCLUSIVE
    )
    assert status("HB-1", waited(beats(slow), 0.0, 3 * slow, 0.1 * 3 * slow)) is Status.FAIL


def test_a_short_heartbeat_gap_after_a_late_read_is_inconclusive_not_fail() -> None:
    # Seen under load: the Viewer-side tap read a heartbeat 0.8 s after the Viewer sent it
    # on time, so the next gap looked 1.19 s long; the Viewer's own cadence was 2.0 s.
    def beats(times: list[float]) -> Trace:
        trace = Trace()
        wire = trace.wire()
        t = accepted_stream(wire, 0.0)
        for at in times:
            wire.p2v(t + at, Heartbeat())
        return trace

    caught_up = [2.0, 4.81, 6.0, 8.0]  # the read of the second was 0.81 s late
    assert status("HB-1", beats(caught_up)) is Status.FAIL  # 2.81 s, then 1.19 s
    assert status("HB-1", waited(beats(caught_up), 4.0, 4.9, 0.8)) is Status.INCONCLUSIVE
    too_fast = [1.0 * i for i in range(1, 9)]  # every second: broken
    assert status("HB-1", waited(beats(too_fast), 0.0, 8.0, 0.8)) is Status.FAIL


def test_an_auth_timeout_late_within_the_wait_is_inconclusive_not_pass() -> None:
    # The no_auth_timeout deviation closed a silent probe at 6.01 s (its liveness timeout,
    # not the 5 s auth timeout) while 0.86 s of CPU wait was measured: that passed once.
    def probe(closed: float) -> Trace:
        trace = Trace()
        wire = trace.wire()
        challenged(wire, 0.0)
        wire.close(closed)
        return ended(trace, closed + 1.0)

    assert status("AUTH-3", probe(5.1)) is Status.PASS
    assert status("AUTH-3", probe(6.01)) is Status.FAIL
    assert status("AUTH-3", waited(probe(6.01), 0.0, 6.0, 0.86)) is Status.INCONCLUSIVE


def test_no_cpu_wait_records_change_nothing() -> None:
    # The same verdicts as before the ledger existed, on a quiet host.
    assert status("EVT-1", ended(resumed(1.7))) is Status.PASS
    assert status("EVT-1", ended(resumed(1.9))) is Status.FAIL


# --- the sampler, on a real host ------------------------------------------------------------

needs_schedstat = pytest.mark.skipif(not supported(), reason="no /proc schedstat here")


def _one_core() -> int:
    return min(os.sched_getaffinity(0))


@needs_schedstat
def test_sampler_measures_two_busy_threads_sharing_one_core() -> None:
    records: list[Record] = []
    lock = threading.Lock()

    def write(record: Record) -> None:
        with lock:
            records.append(record)

    sampler = CpuWaitSampler(write, period=0.02)
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    before = os.sched_getaffinity(0)
    try:
        core = {_one_core()}
        os.sched_setaffinity(burner.pid, core)
        sampler.watch(burner.pid)
        os.sched_setaffinity(0, core)  # this thread and the burner take turns on one core
        sampler.start()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            with lock:
                total = sum(r["wait"] for r in records)
            if total >= 0.2:
                break
            sum(range(20_000))  # keep this process runnable too
    finally:
        sampler.stop()
        os.sched_setaffinity(0, before)
        burner.kill()
        burner.wait()
    assert total >= 0.2, records[-5:]
    for record in records:
        assert record["kind"] == KIND
        assert 0 < record["wait"] <= record["t"] - record["since"] + 1e-9



@needs_schedstat
def test_sampler_counts_a_held_up_event_loop_as_wait() -> None:
    """The taps relay from the harness's loop: while it is held up, frames reach the peers
    late though no thread waits on a run queue (here the loop's own thread sleeps)."""
    import asyncio

    records: list[Record] = []
    lock = threading.Lock()

    def write(record: Record) -> None:
        with lock:
            records.append(record)

    async def main() -> float:
        sampler = CpuWaitSampler(write, period=0.02)
        sampler.watch_loop(asyncio.get_running_loop())
        sampler.start()
        try:
            await asyncio.sleep(0.1)  # a healthy loop first: probes run at once
            time.sleep(0.4)  # not a wait for anything: this holds the loop up
            await asyncio.sleep(0.1)
        finally:
            sampler.stop()
        with lock:
            return float(sum(r["wait"] for r in records))

    total = asyncio.run(main())
    assert total >= 0.3, records
