"""The CPU wait a trace records, for deadlines measured in the time the peers could run.

`cpu_wait` records (harness/cpu_wait.py) say: between `since` and `t` some thread
of the run's processes waited `wait` seconds for a core. A timing rule's window
(PROTOCOL.md 10.1) is lengthened by the wait inside it: a peer that reacts in
time once the host's queueing is left out has reacted in time. Only measured
wait is excused, never more than the window's own length, so a peer that does
not react at all still fails, and on a quiet host (no records) nothing changes.

A record's wait is spread evenly over its period; only the last `KEEP` seconds
are kept, longer than any window a rule waits for. A period's record is written
when it ends, so at a deadline the current period is not known yet: it is taken
to wait as the last one did, for at most `EXTRAPOLATE` periods (a sampler that
writes nothing more has measured no more wait).
"""

from __future__ import annotations

from bisect import bisect_right

from harness.trace import Record

KEEP = 120.0
# A deadline is moved at most this many times: each move adds only the wait measured
# since the last, so the moves shrink; the cap only guards against a pathological trace.
MAX_MOVES = 8
EXTRAPOLATE = 2


class CpuLedger:
    """Periods of measured CPU wait, queried as "how much of [t0, t1] was waiting"."""

    def __init__(self) -> None:
        # Period ends (non-decreasing) and the periods, as (since, t, wait); entries
        # before `_first` have aged out and are cut off now and then.
        self._ends: list[float] = []
        self._periods: list[tuple[float, float, float]] = []
        self._first = 0

    def __bool__(self) -> bool:
        return len(self._periods) > self._first

    def add(self, record: Record) -> None:
        t = float(record["t"])
        since = float(record.get("since", t))
        wait = float(record.get("wait", 0.0))
        if wait <= 0.0 or t <= since:
            return
        if self._ends and t < self._ends[-1]:
            return  # out of order: the sampler writes its periods in turn
        self._ends.append(t)
        self._periods.append((since, t, min(wait, t - since)))
        while self._ends[self._first] < t - KEEP:
            self._first += 1
        if self._first > 1024 and self._first * 2 > len(self._ends):
            del self._ends[: self._first], self._periods[: self._first]
            self._first = 0

    def wait(self, t0: float, t1: float) -> float:
        """Seconds of measured CPU wait inside [t0, t1] (each period's spread evenly)."""
        if t1 <= t0 or not self:
            return 0.0
        total = 0.0
        # The first period that can overlap [t0, t1] ends after t0.
        for i in range(bisect_right(self._ends, t0, self._first), len(self._periods)):
            since, end, wait = self._periods[i]
            if since >= t1:
                break
            overlap = min(end, t1) - max(since, t0)
            if overlap > 0:
                total += wait * overlap / (end - since)
        since, end, wait = self._periods[-1]
        length = end - since
        if end < t1 <= end + EXTRAPOLATE * length:
            total += wait / length * (t1 - max(end, t0))
        return min(total, t1 - t0)

    def lag(self, t: float, tolerance: float) -> float:
        """How far behind its socket a peer may be at `t`: the tolerance plus the CPU wait
        inside that allowance (a fixed point: the wait lengthens the window it is read in)."""
        allowed = tolerance
        for _ in range(MAX_MOVES):
            longer = tolerance + self.wait(t - allowed, t)
            if longer <= allowed + 1e-6:
                break
            allowed = longer
        return allowed
