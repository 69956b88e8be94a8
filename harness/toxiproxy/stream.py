"""What flows between toxics: timestamped chunks, channels and the link's byte budget.

Toxiproxy moves `StreamChunk`s through Go channels. Here a channel never blocks
its writer (so a toxic being interrupted can always hand its chunk on, and no
data is dropped on the floor); instead every channel of one link shares a
`LinkBudget`, and the link stops reading its source socket while the budget is
over its high-water mark. That bounds memory the way Toxiproxy's unbuffered
channels do, without forcing toxics to handle a blocked write.

A Go channel hands a value to a waiting goroutine without a scheduler round
trip worth mentioning; an asyncio task hop costs a loop iteration. So a reader
that only passes chunks on may set `bypass` while it waits, and an empty
channel then hands a chunk straight to it.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Direction(enum.IntEnum):
    # Toxiproxy lists upstream toxics before downstream ones; the enum order keeps that.
    UPSTREAM = 0
    DOWNSTREAM = 1

    @property
    def stream(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, stream: str) -> Direction:
        return cls[stream.upper()]  # any case, as Go's ParseDirection


@dataclass(slots=True)
class StreamChunk:
    data: bytes
    # loop.time() when the proxy read the bytes; latency counts from here, so a
    # chunk that queued behind another one is not delayed twice.
    timestamp: float


class LinkBudget:
    """Bytes read from a link's source but not yet written to its destination."""

    HIGH_WATER = 1024 * 1024
    LOW_WATER = 256 * 1024

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.bytes = 0
        self.items = 0
        self._on_change = on_change

    def add(self, chunk: StreamChunk | None) -> None:
        self.items += 1
        if chunk is not None:
            self.bytes += len(chunk.data)
            if self.bytes > self.HIGH_WATER:
                self._on_change()

    def remove(self, chunk: StreamChunk | None) -> None:
        self.items -= 1
        if chunk is not None:
            self.bytes -= len(chunk.data)
            if self.bytes < self.LOW_WATER:
                self._on_change()

    @property
    def over(self) -> bool:
        return self.bytes > self.HIGH_WATER


class ChunkChannel:
    """A single-reader FIFO of chunks; `None` is end of stream (Go's closed channel)."""

    def __init__(self, budget: LinkBudget) -> None:
        self._items: deque[StreamChunk | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._budget = budget
        # Set while the reader only passes chunks on and waits for the next one: a chunk
        # put into an empty channel is handed to it at once instead of waking its task.
        self.bypass: Callable[[StreamChunk], None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, chunk: StreamChunk | None) -> None:
        if chunk is not None and self.bypass is not None and not self._items:
            self.bypass(chunk)
            return
        self._items.append(chunk)
        self._budget.add(chunk)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> StreamChunk | None:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        # Popped only after the await, so a reader cancelled while waiting loses nothing.
        chunk = self._items.popleft()
        self._budget.remove(chunk)
        return chunk

    def move_to(self, other: ChunkChannel) -> None:
        """Append everything queued here to `other`, keeping stream order."""
        while self._items:
            chunk = self._items.popleft()
            self._budget.remove(chunk)
            other.put(chunk)
