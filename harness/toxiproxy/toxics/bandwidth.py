from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.toxiproxy.stream import StreamChunk
from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class BandwidthToxic(Toxic):
    """Passes data through at most `rate` KB/s (1 KB = 1000 bytes, as in Toxiproxy)."""

    type_name = "bandwidth"

    rate: int = 0

    async def pipe(self, stub: ToxicStub) -> None:
        owed = 0.0  # seconds of transmission time not yet waited for
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            data = chunk.data
            # Slices are cut at an offset: cutting the rest off each time would copy a
            # 256 KiB read once per 100 ms slice, a burst of mid-sized garbage.
            sent = 0
            try:
                if self.rate <= 0:
                    # Toxiproxy spins forever on a zero rate; the stream simply stalls.
                    await asyncio.get_running_loop().create_future()
                owed += len(data) / (self.rate * 1000)
                # A slow rate would otherwise release a big chunk in one burst after a
                # long silence; send it in 100 ms slices instead.
                slice_size = self.rate * 100
                while len(data) - sent > slice_size:
                    await asyncio.sleep(0.1)
                    stub.write(StreamChunk(data[sent:sent + slice_size], chunk.timestamp))
                    sent += slice_size
                    owed -= 0.1
                started = stub.now()
                if owed > 0:
                    await asyncio.sleep(owed)
                # Timers overshoot; carry the error into the next chunk's wait.
                owed -= stub.now() - started
            except asyncio.CancelledError:
                if sent < len(data):
                    stub.write(StreamChunk(data[sent:], chunk.timestamp))  # Don't drop data
                raise
            stub.write(StreamChunk(data[sent:], chunk.timestamp))  # data itself when sent is 0
