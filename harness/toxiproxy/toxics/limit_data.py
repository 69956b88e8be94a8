from __future__ import annotations

from dataclasses import dataclass

from harness.toxiproxy.stream import StreamChunk
from harness.toxiproxy.toxics.base import Toxic, ToxicStub


@dataclass
class LimitDataState:
    transmitted: int = 0


@dataclass(frozen=True)
class LimitDataToxic(Toxic):
    """Closes the connection once `bytes` bytes have passed through it."""

    type_name = "limit_data"

    bytes: int = 0

    def new_state(self) -> LimitDataState:
        # Kept on the stub, so raising the limit live continues the count, not restarts it.
        return LimitDataState()

    async def pipe(self, stub: ToxicStub) -> None:
        state: LimitDataState = stub.state
        while True:
            chunk = await stub.read()
            if chunk is None:
                stub.close()
                return
            remaining = max(self.bytes - state.transmitted, 0)
            data = chunk.data[:remaining]
            if data:
                stub.write(StreamChunk(data, chunk.timestamp))
                state.transmitted += len(data)
            if self.bytes - state.transmitted <= 0:
                stub.close()
                return
