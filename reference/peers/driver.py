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
CLOSE_LINGER = 1.0  # seconds a closing socket waits for its last bytes and the peer's EOF
CLOSE_DISCARD = 64 * 1024  # bytes it reads and drops meanwhile; a peer still sending gets RST
CLOSE_QUIET = 0.05  # a peer silent this long has nothing unread left: close at once

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
        self._read_task: asyncio.Task[bytes] | None = None

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
            # The close lingers (CLOSE_LINGER): the events that came with it (a Viewer's
            # DISCONNECTED, its decoder release) are handled and recorded first, at the
            # time the endpoint acted, not after the linger (RECON-1 measures from them).
            closing = False
            for event in events:
                result = self.on_event(event, monotonic())
                if result is not None:
                    await result
                closing = closing or isinstance(event, CloseSocket)
            if closing:
                await self._close_transport()

    async def _close_transport(self) -> None:
        """Send what is queued (an ERROR, a BYE), then FIN, then close within CLOSE_LINGER.

        Closing a socket with unread input makes the kernel send RST, which can destroy
        our last message before the peer reads it. So after FIN up to CLOSE_DISCARD of
        the peer's remaining bytes are read and dropped until its EOF, a quiet spell
        (CLOSE_QUIET) or the linger time, and only then is the socket closed. A peer
        that keeps sending after it was told to stop gets its RST; one that stops reads
        our last message.
        """
        if self.writer.is_closing():
            return
        if self._read_task is not None:
            self._read_task.cancel()
            self._read_task = None
        try:
            await asyncio.wait_for(self._finish_sending(), CLOSE_LINGER)
        except (ConnectionError, OSError, TimeoutError):
            pass
        self.writer.close()
        self.closed.set()

    async def _finish_sending(self) -> None:
        await self.writer.drain()
        if self.writer.can_write_eof():
            self.writer.write_eof()
        dropped = 0
        while dropped < CLOSE_DISCARD:
            try:
                chunk = await asyncio.wait_for(self.reader.read(CLOSE_DISCARD), CLOSE_QUIET)
            except TimeoutError:
                return  # nothing unread: closing now sends FIN, not RST
            if not chunk:
                return
            dropped += len(chunk)  # the peer's last words no longer matter

    async def run(self) -> None:
        """Until the endpoint or the peer closes the connection."""
        try:
            await self.flush()
            while not self.writer.is_closing():
                deadline = self.endpoint.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - monotonic())
                if self._read_task is None:
                    self._read_task = asyncio.ensure_future(self.reader.read(READ_SIZE))
                wake_task = asyncio.ensure_future(self._wake.wait())
                try:
                    done, _ = await asyncio.wait(
                        {self._read_task, wake_task},
                        timeout=timeout,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    # Also when this task is cancelled mid-wait (a killed Viewer): a waiter
                    # left pending is collected with the connection, and asyncio reports
                    # "Task was destroyed but it is pending".
                    wake_task.cancel()
                self._wake.clear()
                now = monotonic()
                if self._read_task in done:
                    try:
                        data = self._read_task.result()
                    except (ConnectionError, OSError):
                        data = b""
                    self._read_task = None
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
            if self._read_task is not None:
                self._read_task.cancel()
            await self._close_transport()
            self.closed.set()
