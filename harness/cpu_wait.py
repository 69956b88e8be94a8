"""How long the host kept a run's processes waiting for a CPU: `cpu_wait` trace records.

A timing rule gives a peer so long to react (PROTOCOL.md 10.1). On a shared host
the peer may spend part of that time runnable but not running: the scheduler had
no core for it. That wait is the host's, not the peer's, so the monitors measure
their deadlines in the time the peers could run (`harness.checks.cpu_ledger`).

Linux counts, per thread, the nanoseconds it spent runnable on a run queue
(`/proc/PID/task/TID/schedstat`, second field). `CpuWaitSampler` reads every
thread of the watched processes (the harness itself, which holds the taps and the
reference peers, and each testee's whole process tree) every `PERIOD` seconds and
writes one record per period in which some thread waited at least `MIN_WAIT`:

    {"t": end of the period, "kind": "cpu_wait", "since": start of the period,
     "wait": the longest any one thread waited in it (s), "threads": threads read}

The longest single wait, not the sum: a reaction runs through a few threads in
turn, and summing every decoder thread's wait would excuse more than any one
reaction lost. So a period never excuses more than its own length, and a quiet
host writes nothing.

The harness's own event loop counts too (`watch_loop`): the taps relay every
frame from it, so while it is held up (by the host, by a long collection, by a
thread holding the interpreter) frames reach the peers late, which no run queue
shows. Each period a no-op is posted to the loop; how long it has waited to run
is the loop's lag, and a period's wait is the larger of the two.

On hosts without schedstat (not Linux, or a kernel without it) nothing is written
and every deadline stays as it is.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.trace import Record

KIND = "cpu_wait"
PERIOD = 0.05
# Below this a period's wait is scheduling noise that the fixed tolerance covers.
MIN_WAIT = 0.002
# How often a testee's process tree is walked again for new processes.
RESCAN = 1.0

PROC = Path("/proc")


def supported() -> bool:
    return (PROC / "self" / "schedstat").exists()


def thread_waits(pid: int) -> dict[tuple[int, int], int]:
    """(pid, tid) -> nanoseconds that thread has waited on a run queue, for one process."""
    out: dict[tuple[int, int], int] = {}
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return out  # it has ended
    for tid in tids:
        try:
            fields = (PROC / str(pid) / "task" / tid / "schedstat").read_bytes().split()
        except OSError:
            continue
        if len(fields) >= 2:
            out[(pid, int(tid))] = int(fields[1])
    return out


def process_tree(root: int) -> list[int]:
    """`root` and every process below it (children lists of each thread, Linux 3.5+)."""
    seen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            tasks = os.listdir(PROC / str(pid) / "task")
        except OSError:
            continue
        for tid in tasks:
            try:
                text = (PROC / str(pid) / "task" / tid / "children").read_text()
            except OSError:
                continue
            todo.extend(int(child) for child in text.split())
    return seen


class CpuWaitSampler:
    """A thread that writes `cpu_wait` records for the harness and its testees."""

    def __init__(
        self,
        write: Callable[[Record], None],
        *,
        period: float = PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.period = period
        self.clock = clock
        self.roots: list[int] = [os.getpid()]
        self._pids: list[int] = []
        self._scanned = float("-inf")
        self._last: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The no-op posted to the loop: when it was posted, and when it ran (None: not yet).
        self._probe: list[float | None] = []
        self.total = 0.0  # seconds of wait written so far

    def watch(self, pid: int) -> None:
        """Count `pid` and everything it starts (a testee's process group leader)."""
        if pid not in self.roots:
            self.roots.append(pid)
            self._scanned = float("-inf")

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count the lag of `loop` (the one the taps relay from) as wait too."""
        self._loop = loop

    def _loop_lag(self, since: float, now: float) -> float:
        """How long the loop kept the last probe waiting within (since, now]; post the next."""
        lag = 0.0
        probe = self._probe
        if probe:
            posted, ran = probe
            assert posted is not None
            end = ran if ran is not None else now
            lag = max(0.0, end - max(posted, since))
            if ran is None:
                return lag  # still waiting: measure it again next period
        if self._loop is not None and not self._loop.is_closed():
            fresh: list[float | None] = [self.clock(), None]

            def done() -> None:
                fresh[1] = self.clock()

            try:
                self._loop.call_soon_threadsafe(done)
            except RuntimeError:
                return lag  # the loop has closed
            self._probe = fresh
        return lag

    def start(self) -> None:
        if not supported() or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cpu wait", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self) -> None:
        # The first sample only sets the baseline (every thread is new to it): waits
        # before the run are not the run's.
        since = self.clock()
        while not self._stop.wait(self.period):
            now = self.clock()
            self.sample(since, now)
            since = now

    def _read(self, now: float) -> dict[tuple[int, int], int]:
        if now - self._scanned >= RESCAN:
            # A testee is the harness's child too: read each process once.
            tree = (pid for root in self.roots for pid in process_tree(root))
            self._pids = list(dict.fromkeys(tree))
            self._scanned = now
        waits: dict[tuple[int, int], int] = {}
        for pid in self._pids:
            waits.update(thread_waits(pid))
        return waits

    def sample(self, since: float, now: float) -> None:
        """Read every thread once; write a record if one waited `MIN_WAIT` or more."""
        waits = self._read(now)
        longest = max(_deltas(waits, self._last), default=0) / 1e9
        self._last = waits
        longest = max(longest, self._loop_lag(since, now))
        # Whole microseconds, rounded down: never more than the period itself.
        wait = math.floor(min(longest, now - since) * 1e6) / 1e6
        if wait >= MIN_WAIT:
            self.total += wait
            self.write({
                "t": now, "kind": KIND, "since": since, "wait": wait,
                "threads": len(waits),
            })


def _deltas(now: dict[tuple[int, int], int], before: dict[tuple[int, int], int]) -> Iterable[int]:
    """Each thread's wait since the last reading. A thread seen for the first time is
    left out: how much of its wait fell in this period is unknown."""
    for key, value in now.items():
        previous = before.get(key)
        if previous is not None:
            yield value - previous
