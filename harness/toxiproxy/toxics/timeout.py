from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class TimeoutToxic(Toxic):
    """Stops all data and closes the connection after `timeout` ms; 0 never closes."""

    type_name = "timeout"

    timeout: int = 0

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            try:
                # A fresh timer for every chunk, as Toxiproxy's select loop does: the
                # close comes `timeout` ms after the stream last carried data.
                async with asyncio.timeout(self.timeout / 1000 if self.timeout > 0 else None):
                    chunk = await stub.read()
            except TimeoutError:
                stub.close()
                return
            if chunk is None:
                stub.close()
                return
            # Drop the data on the ground: the peer sees a connection that went silent.

    def cleanup(self, stub: ToxicStub) -> None:
        # Data was dropped while the toxic held the stream, so it cannot simply resume.
        stub.close()
