from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass(frozen=True)
class ResetPeerToxic(Toxic):
    """Resets the connection (TCP RST) `timeout` ms after data first arrives; 0 at once."""

    type_name = "reset_peer"

    timeout: int = 0

    async def pipe(self, stub: ToxicStub) -> None:
        # Whatever arrives (data or end of stream) is dropped: a graceful FIN must not
        # get out before the reset.
        await stub.read()
        await asyncio.sleep(self.timeout / 1000)
        stub.reset_peer()
