from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class LatencyToxic(Toxic):
    """Passes data through with a delay of latency +/- jitter (milliseconds)."""

    type_name = "latency"

    latency: int = 0
    jitter: int = 0

    def delay(self, rng: random.Random) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += rng.randrange(2 * self.jitter) - self.jitter
        return delay / 1000

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            # Counted from when the proxy read the chunk, so chunks queued behind a
            # delayed one are not delayed twice.
            sleep = self.delay(stub.rng) - (stub.now() - chunk.timestamp)
            try:
                if sleep > 0:
                    await asyncio.sleep(sleep)
            except asyncio.CancelledError:
                stub.write(chunk)  # Don't drop any data on the floor
                raise
            chunk.timestamp += sleep
            stub.write(chunk)
