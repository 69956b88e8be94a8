from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class SlowCloseToxic(Toxic):
    """Delays the close of the connection by `delay` ms after the stream ends."""

    type_name = "slow_close"

    delay: int = 0

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.read()
            if chunk is not None:
                stub.write(chunk)
                continue
            try:
                await asyncio.sleep(self.delay / 1000)
            except asyncio.CancelledError:
                # The end of stream has already been read: losing it here would leave the
                # connection open forever once the toxic is replaced.
                stub.close()
                raise
            stub.close()
            return
