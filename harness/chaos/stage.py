"""A fault at work on one direction of one connection (Toxiproxy's ToxicStub).

The frame proxy chains one `FaultStage` per active fault for each direction:
a frame goes into the first stage, and each stage's fault decides to forward,
drop, hold or delay it. The stage holds what the fault needs per connection
(held frames, a delay queue, timers, a small memory) and writes the trace
record of every application. `FaultRuntime` is what one fault shares across
all connections: its id, random generator and counters.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.chaos.faults.base import Fault, Item
from reference.protocol.frames import HEADER_SIZE, Frame

if TYPE_CHECKING:
    from harness.chaos.proxy import FrameLink


@dataclass(eq=False)
class FaultRuntime:
    fault_id: str
    fault: Fault
    rng: random.Random
    added_at: float  # loop time (CLOCK_MONOTONIC, like the trace)
    seen: int = 0  # frames in the fault's selection so far, all connections
    applied: int = 0  # frames the fault acted on, all connections


def item_size(item: Item) -> int:
    return len(item) if isinstance(item, bytes) else HEADER_SIZE + len(item.payload)


def describe(item: Item) -> dict[str, Any]:
    if isinstance(item, bytes):
        return {"raw_bytes": len(item)}
    return {"type": item.type.name, "epoch": item.epoch, "seq": item.sequence}


class FaultStage:
    def __init__(self, runtime: FaultRuntime, link: FrameLink) -> None:
        self.runtime = runtime
        self.fault = runtime.fault
        self.link = link
        self.next: Callable[[Item], None] = link.output
        self.memory: dict[str, Any] = {}  # a fault's per-connection state
        self._held: deque[Item] = deque()
        self._delayed: deque[tuple[float, Item]] = deque()
        self._delay_timer: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def rng(self) -> random.Random:
        return self.runtime.rng

    def push(self, item: Item) -> None:
        self.fault.on_frame(item, self)

    # --- the window --------------------------------------------------------

    def now(self) -> float:
        return self.link.loop.time()

    def elapsed(self) -> float:
        return self.now() - self.runtime.added_at

    def in_time_window(self) -> bool:
        fault, elapsed = self.fault, self.elapsed()
        if elapsed < fault.start:
            return False
        return fault.duration is None or elapsed < fault.start + fault.duration

    def window_end(self) -> float | None:
        """Loop time at which the fault's duration runs out; None: it lasts until removed."""
        if self.fault.duration is None:
            return None
        return self.runtime.added_at + self.fault.start + self.fault.duration

    def eligible(self, frame: Frame) -> bool:
        """Selected, inside the time and frame-count windows, and picked by `probability`."""
        fault, runtime = self.fault, self.runtime
        if not fault.selects(frame):
            return False
        runtime.seen += 1
        if runtime.seen <= fault.after_frames or not self.in_time_window():
            return False
        if fault.count is not None and runtime.applied >= fault.count:
            return False
        # Only roll when it can matter, so that adding probability: 1 changes nothing.
        return fault.probability >= 1.0 or self.rng.random() < fault.probability

    # --- moving items --------------------------------------------------------

    def forward(self, item: Item) -> None:
        self.next(item)

    def hold(self, item: Item) -> None:
        self._held.append(item)
        self._idle.clear()
        self.link.hold_bytes(item_size(item))

    @property
    def held(self) -> int:
        return len(self._held)

    def release(self) -> int:
        """Forward everything held, in the order it came; returns how many."""
        released = 0
        while self._held:
            item = self._held.popleft()
            self.link.hold_bytes(-item_size(item))
            self.next(item)
            released += 1
        self._check_idle()
        return released

    def forward_later(self, item: Item, delay: float) -> None:
        # Never before an item delayed earlier: delayed frames keep their order.
        due = self.now() + delay
        if self._delayed:
            due = max(due, self._delayed[-1][0])
        self._delayed.append((due, item))
        self._idle.clear()
        self.link.hold_bytes(item_size(item))
        if self._delay_timer is None:
            self._delay_timer = self.link.loop.call_at(due, self._release_due)

    def _release_due(self) -> None:
        self._delay_timer = None
        now = self.now()
        while self._delayed and self._delayed[0][0] <= now:
            _, item = self._delayed.popleft()
            self.link.hold_bytes(-item_size(item))
            self.next(item)
        if self._delayed:
            self._delay_timer = self.link.loop.call_at(self._delayed[0][0], self._release_due)
        self._check_idle()

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        timer = self.link.loop.call_at(when, callback)
        self._timers.append(timer)
        return timer

    def _check_idle(self) -> None:
        if not self._held and not self._delayed:
            self._idle.set()

    # --- the trace and the connection -------------------------------------------

    def record(self, action: str, item: Item | None = None, *, counts: bool = True,
               **extra: Any) -> None:
        if counts:
            self.runtime.applied += 1
        self.link.proxy.record_fault(
            self.runtime,
            action,
            conn=self.link.conn.id,
            dir=self.link.direction,
            **({"frame": describe(item)} if item is not None else {}),
            **extra,
        )

    def close_connection(self, reason: str) -> None:
        self.link.close_connection(reason)

    # --- end of the stage ---------------------------------------------------------

    def flush(self) -> None:
        """The fault is removed (or the stream broke): hand on everything now, in order."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._delay_timer is not None:
            self._delay_timer.cancel()
            self._delay_timer = None
        # A fault uses one of the two queues, so their relative order does not arise.
        while self._delayed:
            _, item = self._delayed.popleft()
            self.link.hold_bytes(-item_size(item))
            self.next(item)
        self.release()

    async def settle(self) -> None:
        """The sender half-closed: release holds now, let delays run their course."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.release()
        await self._idle.wait()

    def close(self) -> None:
        """The connection is gone: nothing can be delivered any more."""
        for timer in self._timers:
            timer.cancel()
        if self._delay_timer is not None:
            self._delay_timer.cancel()
        self._held.clear()
        self._delayed.clear()
        self._idle.set()
