from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass

from harness.toxiproxy.stream import StreamChunk
from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class SlicerToxic(Toxic):
    """Slices data into pieces of about `average_size` +/- `size_variation` bytes,
    `delay` microseconds apart, to look like real TCP segmentation."""

    type_name = "slicer"

    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    def cut_points(self, size: int, rng: random.Random) -> list[int]:
        """Offsets [0, a, b, ..., size]: halve recursively with a random nudge, so small
        pieces are not biased towards the start or the end."""
        points: list[int] = []
        pending = [(0, size)]
        while pending:
            start, end = pending.pop()
            if (end - start) - self.average_size <= self.size_variation or end - start < 2:
                points.append(end)
                continue
            nudge = 0
            if self.size_variation > 0:
                nudge = rng.randrange(2 * self.size_variation) - self.size_variation
            # Toxiproxy panics when the nudge leaves the range; keep both halves non-empty.
            mid = min(max(start + (end - start) // 2 + nudge, start + 1), end - 1)
            pending.append((mid, end))
            pending.append((start, mid))
        return [0, *points]

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            points = self.cut_points(len(chunk.data), stub.rng)
            for start, end in itertools.pairwise(points):
                stub.write(StreamChunk(chunk.data[start:end], chunk.timestamp))
                try:
                    await asyncio.sleep(self.delay / 1_000_000)
                except asyncio.CancelledError:
                    if end < len(chunk.data):
                        stub.write(StreamChunk(chunk.data[end:], chunk.timestamp))
                    raise
