"""Real reference peers over loopback TCP, and waiting on their telemetry with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]


class Telemetry:
    """A telemetry sink that tests can wait on: no sleeps, a deadline on every wait."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._changed = asyncio.Event()

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        self._changed.set()

    def states(self) -> list[str]:
        return [r["state"] for r in self.records if r["event"] == "state"]

    def of(self, event: str) -> list[Record]:
        return [r for r in self.records if r["event"] == event]

    async def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; states {self.states()}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def state(self, name: str, timeout: float = 10.0, *, after: int = 0) -> Record:
        """The first transition into `name` among records[after:]."""

        def found() -> Record | None:
            return next(
                (r for r in self.records[after:] if r["event"] == "state" and r["state"] == name),
                None,
            )

        await self.until(lambda: found() is not None, timeout, f"state {name}")
        result = found()
        assert result is not None
        return result

    async def rendered(
        self, count: int, timeout: float = 10.0, *, epoch: int | None = None
    ) -> None:
        await self.until(
            lambda: (
                len([r for r in self.of("rendered") if epoch is None or r["stream_epoch"] == epoch])
                >= count
            ),
            timeout,
            f"{count} rendered pictures (epoch {epoch})",
        )


def run(coro: Any, timeout: float = 60.0) -> Any:
    """Run one async test body with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
