"""The order in which the monitors see a trace: wire order within a source, time across.

A trace interleaves several sources: each tap connection, each Viewer's
telemetry, the Primary's own records, the scenario's actions and faults. Within
one source the order of the records *is* the order of events (a tap writes a
connection's frames in the order they crossed the wire), so it is never changed,
whatever the timestamps say: two frames read in one segment share a timestamp
and keep their wire order. Across sources only timestamps relate records, so
they are merged by time.

A live trace does not arrive sorted (a Viewer's telemetry file is tailed into the
trace a little late), so the sequencer holds records for `lag` seconds of trace
time before releasing them: memory is bounded by what arrives in `lag`, not by
the length of the trace. A record arriving later than that is released at once
and counted in `late`: the monitors see it out of time order, never lose it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import count

from harness.trace import Record

TELEMETRY = "telemetry"  # the record kind of a Viewer's own reports

# Longer than a tailed telemetry file lags behind the taps (tens of milliseconds).
DEFAULT_LAG = 2.0


def source_of(record: Record) -> tuple[str, str]:
    """The stream of events a record belongs to; its order is kept as written."""
    tap = record.get("tap")
    if tap is not None:
        return (tap, record.get("conn", ""))
    kind = record["kind"]
    if kind == TELEMETRY:
        return (kind, record.get("viewer", ""))
    return (kind, "")


def viewer_source(viewer: str) -> tuple[str, str]:
    """The source of a Viewer's telemetry records."""
    return (TELEMETRY, viewer)


class Sequencer:
    """Releases records in time order across sources and written order within one."""

    def __init__(self, lag: float = DEFAULT_LAG) -> None:
        self.lag = lag
        self.late = 0
        # Records held back, as (key, arrival, record). Most arrive in key order and wait
        # in a FIFO, which stays sorted; the few that arrive out of order wait in a heap.
        # Releasing the smaller head of the two is the order of one heap of all.
        self._in_order: deque[tuple[float, int, Record]] = deque()
        self._out_of_order: list[tuple[float, int, Record]] = []
        self._counter = count()
        self._source_time: dict[tuple[str, str], float] = {}
        self._newest = float("-inf")
        self._released = float("-inf")

    def __len__(self) -> int:
        """How many records are held back now."""
        return len(self._in_order) + len(self._out_of_order)

    def push(self, record: Record) -> list[Record]:
        """The records that are ready now, in order (often none, while they wait out the lag)."""
        source = source_of(record)
        # A source's records never overtake each other: their sort key never goes back.
        key = record["t"]
        previous = self._source_time.get(source)
        if previous is not None and previous > key:
            key = previous
        if record["kind"] == "conn" and record.get("event") == "close":
            self._source_time.pop(source, None)  # a closed connection writes nothing more
        else:
            self._source_time[source] = key
        if key < self._released:
            self.late += 1
            return [record]
        held = (key, next(self._counter), record)
        if key >= self._newest:
            self._newest = key
            self._in_order.append(held)
        else:
            heapq.heappush(self._out_of_order, held)
        return self._release(self._newest - self.lag)

    def forget_source(self, source: tuple[str, str]) -> None:
        """A source that writes nothing more (a retired Viewer's telemetry)."""
        self._source_time.pop(source, None)

    def drain(self) -> Iterator[Record]:
        yield from self._release(float("inf"))

    def _release(self, horizon: float) -> list[Record]:
        """Every held record whose key is at or before `horizon`, smallest first."""
        fifo, heap = self._in_order, self._out_of_order
        ready: list[Record] = []
        if not heap:  # the usual case: everything held arrived in order
            while fifo and fifo[0][0] <= horizon:
                self._released, _, item = fifo.popleft()
                ready.append(item)
            return ready
        while True:
            if heap and (not fifo or heap[0] < fifo[0]):
                if heap[0][0] > horizon:
                    break
                released_key, _, item = heapq.heappop(heap)
            elif fifo and fifo[0][0] <= horizon:
                released_key, _, item = fifo.popleft()
            else:
                break
            self._released = released_key
            ready.append(item)
        return ready


def in_order(records: Iterable[Record], lag: float = DEFAULT_LAG) -> Iterator[Record]:
    sequencer = Sequencer(lag)
    for record in records:
        yield from sequencer.push(record)
    yield from sequencer.drain()
