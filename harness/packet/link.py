"""The bottleneck link of a lane: when each packet leaves it, and tail drop at the queue limit.

A link is FIFO: a packet's departure depends only on the packets before it,
so it is computed once, when the packet arrives. The queue holds the packets
that have arrived but not yet left; one more than `queue_limit` is dropped.
Times are seconds on the impairer's clock (time.monotonic()).
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Protocol

from harness.packet.mahimahi import OPPORTUNITY_BYTES


class Link(Protocol):
    def departure(self, now: float, size: int) -> float | None:
        """When a packet of `size` bytes arriving at `now` leaves, or None: queue full."""


class WireSpeed:
    """No bottleneck: every packet leaves as it arrives."""

    def departure(self, now: float, size: int) -> float | None:
        return now


class _Queue:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.leaving: deque[float] = deque()

    def full(self, now: float) -> bool:
        while self.leaving and self.leaving[0] <= now:
            self.leaving.popleft()
        return len(self.leaving) >= self.limit


class RateLink:
    """A constant rate in kbit/s: each packet holds the link for size * 8 / rate."""

    def __init__(self, rate_kbit: float, queue_limit: int) -> None:
        self.bytes_per_s = rate_kbit * 1000 / 8
        self.queue = _Queue(queue_limit)
        self.free_at = 0.0

    def departure(self, now: float, size: int) -> float | None:
        if self.queue.full(now):
            return None
        self.free_at = max(now, self.free_at) + size / self.bytes_per_s
        self.queue.leaving.append(self.free_at)
        return self.free_at


class TraceLink:
    """Mahimahi replay: each opportunity carries up to 1504 bytes; the trace repeats.

    A packet larger than what is left of an opportunity takes the rest of it
    and as many further opportunities as it needs. An opportunity that finds
    the queue empty is lost, as on a real link.
    """

    def __init__(self, times_ms: list[int], queue_limit: int, start: float) -> None:
        self.times = times_ms
        self.period = times_ms[-1]
        self.start = start
        self.queue = _Queue(queue_limit)
        self.cursor = -1  # global opportunity index: cycle * len(times) + index
        self.credit = 0

    def _at(self, cursor: int) -> float:
        cycle, index = divmod(cursor, len(self.times))
        return self.start + (cycle * self.period + self.times[index]) / 1000

    def _first_from(self, now: float) -> int:
        elapsed_ms = (now - self.start) * 1000
        cycle, into = divmod(elapsed_ms, self.period)
        index = bisect.bisect_left(self.times, into)
        return int(cycle) * len(self.times) + index

    def departure(self, now: float, size: int) -> float | None:
        if self.queue.full(now):
            return None
        if self.cursor < 0 or self._at(self.cursor) < now:
            self.cursor, self.credit = self._first_from(now), OPPORTUNITY_BYTES
        need = size
        while need > self.credit:
            need -= self.credit
            self.cursor += 1
            self.credit = OPPORTUNITY_BYTES
        self.credit -= need
        leaves = self._at(self.cursor)
        self.queue.leaving.append(leaves)
        return leaves
