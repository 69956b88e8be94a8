"""Drive one sans-IO endpoint over an asyncio stream pair.

The loop is the same for both roles: read with a timeout that ends at the
endpoint's next deadline, feed bytes or fire timers, hand events to the role,
write what the endpoint wants sent. The clock is read here, never in the core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from reference.protocol.connection import Endpoint
from reference.protocol.events import CloseSocket, Event

READ_SIZE = 256 * 1024

EventHandler = Callable[[Event, float], Awaitable[None] | None]


def monotonic() -> float:
    return time.monotonic()


class StreamDriver:
    """Pumps bytes, timers and events between a socket and an Endpoint."""

    def __init__(
        self,
        endpoint: Endpoint,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_event: EventHandler,
    ) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.on_event = on_event
        self.closed = asyncio.Event()
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """The application changed the endpoint from outside the loop: flush and re-plan."""
        self._wake.set()

    async def flush(self) -> None:
        """Send what the endpoint queued and dispatch its events."""
        while True:
            data = self.endpoint.data_to_send()
            if data and not self.writer.is_closing():
                self.writer.write(data)
            events = self.endpoint.next_events()
            if not events and not data:
                break
            for event in events:
                result = self.on_event(event, monotonic())
                if result is not None:
                    await result
                if isinstance(event, CloseSocket):
                    await self._close_transport()

    async def _close_transport(self) -> None:
        if self.writer.is_closing():
            return
        try:
            await asyncio.wait_for(self.writer.drain(), 1.0)
        except (ConnectionError, TimeoutError):
            pass
        self.writer.close()
        self.closed.set()

    async def run(self) -> None:
        """Until the endpoint or the peer closes the connection."""
        read_task: asyncio.Task[bytes] | None = None
        try:
            await self.flush()
            while not self.writer.is_closing():
                deadline = self.endpoint.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - monotonic())
                if read_task is None:
                    read_task = asyncio.ensure_future(self.reader.read(READ_SIZE))
                wake_task = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait(
                    {read_task, wake_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                wake_task.cancel()
                self._wake.clear()
                now = monotonic()
                if read_task in done:
                    try:
                        data = read_task.result()
                    except (ConnectionError, OSError):
                        data = b""
                    read_task = None
                    self.endpoint.receive_data(data, now)
                    if not data:
                        await self.flush()
                        break
                self.endpoint.handle_timers(now)
                await self.flush()
                if self.writer.transport.get_write_buffer_size() > 0:
                    try:
                        await asyncio.wait_for(self.writer.drain(), 5.0)
                    except (ConnectionError, TimeoutError):
                        break
        finally:
            if read_task is not None:
                read_task.cancel()
            await self._close_transport()
            self.closed.set()
