"""TCP relay plumbing shared by the wire tap and the frame proxy.

A `Relay` accepts connections, opens one upstream connection for each, and
moves bytes in both directions through a `Pipe` per direction that the
subclass provides (record the bytes, or decode and fault them). The relay
owns everything about sockets: half-close in both directions, resets passed
on as resets, backpressure through `drain()`, and shutting down without
leaving a task behind. `RelayThread` hosts a relay on its own event loop in a
background thread for synchronous callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from harness.trace import P2V, V2P, TraceWriter

Endpoint = tuple[str, int]
READ_SIZE = 1 << 18
STREAM_LIMIT = 1 << 18
CONNECT_TIMEOUT = 10.0

T = TypeVar("T")


class Pipe(Protocol):
    """One direction of one relayed connection: bytes in, bytes out to `RelayConnection`."""

    async def feed(self, chunk: bytes) -> None: ...

    async def finish(self) -> None:
        """The sender half-closed: hand on anything still held before the EOF goes out."""

    def close(self) -> None:
        """The connection is gone: cancel timers, forget held data."""


@dataclass(eq=False)
class RelayConnection:
    """Both sockets of one relayed connection; `client` is the side that connected to us."""

    id: str
    client: Endpoint
    server: Endpoint
    client_writer: asyncio.StreamWriter
    upstream_writer: asyncio.StreamWriter
    reason: str | None = None
    half_closed: list[str] = field(default_factory=list)  # "client"/"upstream", in order
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def writer(self, direction: str) -> asyncio.StreamWriter:
        return self.upstream_writer if direction == V2P else self.client_writer

    def write(self, direction: str, data: bytes) -> None:
        writer = self.writer(direction)
        # Writing to a closing transport only makes asyncio log warnings; the
        # bytes could not arrive anyway.
        if data and not writer.transport.is_closing():
            writer.write(data)

    @property
    def closing(self) -> bool:
        return self.client_writer.transport.is_closing() and (
            self.upstream_writer.transport.is_closing()
        )

    def close(self, reason: str) -> None:
        """Orderly close of both sockets; what is already written still goes out."""
        if self.reason is None:
            self.reason = reason
        for writer in (self.client_writer, self.upstream_writer):
            writer.close()

    def reset(self, reason: str) -> None:
        """Abortive close (RST) of both sockets, so a reset on one side reaches the other."""
        if self.reason is None:
            self.reason = reason
        for writer in (self.client_writer, self.upstream_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


class Relay:
    """Accepts on listen_host:listen_port and relays each connection to the upstream."""

    def __init__(
        self,
        name: str,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        trace: TraceWriter | None = None,
    ) -> None:
        self.name = name
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.trace = trace
        self.connections: dict[str, RelayConnection] = {}
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._changed: asyncio.Event | None = None

    # --- what a subclass provides ------------------------------------------

    def open_pipe(self, conn: RelayConnection, direction: str) -> Pipe:
        raise NotImplementedError

    def connection_opened(self, conn: RelayConnection) -> None:
        """Called once both sockets are up, before any byte moves."""

    def connection_closed(self, conn: RelayConnection) -> None:
        """Called once both directions are done and both sockets closed."""

    def connection_failed(self, conn_id: str, client: Endpoint, error: str) -> None:
        """The upstream could not be reached; the client socket is closed."""

    def connection_half_closed(self, conn: RelayConnection, side: str) -> None:
        """`side` ("client"/"upstream") sent its EOF; the other side may still send."""

    # --- life cycle ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (still known after stop(), for the record)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.listen_host, self.listen_port, limit=STREAM_LIMIT
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for conn in list(self.connections.values()):
            conn.reset("relay stopped")
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def until_connections(self, count: int, timeout: float = CONNECT_TIMEOUT) -> None:
        """Wait until exactly `count` connections are open (0: all closed and cleaned up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.connections) != count:
            if self._changed is None:
                self._changed = asyncio.Event()
            await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))

    def _connections_changed(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None  # the next waiter waits for the next change

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- one connection --------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:
            # stop() ends connections this way; asyncio's stream callback would log a
            # cancelled handler as an error.
            pass
        finally:
            self._handlers.discard(task)

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        conn_id = f"c{next(self._ids)}"
        client = _endpoint(client_writer.get_extra_info("peername"))
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.upstream_host, self.upstream_port, limit=STREAM_LIMIT
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            self.connection_failed(conn_id, client, f"upstream unreachable: {exc}")
            client_writer.transport.abort()
            return
        server = _endpoint(up_writer.get_extra_info("peername"))
        conn = RelayConnection(conn_id, client, server, client_writer, up_writer)
        self.connections[conn_id] = conn
        self._connections_changed()
        pipes: list[Pipe] = []
        try:
            self.connection_opened(conn)
            pipes = [self.open_pipe(conn, V2P), self.open_pipe(conn, P2V)]
            conn.tasks = [
                asyncio.create_task(self._pump(conn, V2P, client_reader, pipes[0])),
                asyncio.create_task(self._pump(conn, P2V, up_reader, pipes[1])),
            ]
            try:
                await asyncio.gather(*conn.tasks)
            finally:
                # Cancelled from stop(): the pumps must not outlive the handler.
                for pump in conn.tasks:
                    pump.cancel()
                await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            for pipe in pipes:
                pipe.close()
            if not conn.closing:
                conn.close(conn.reason or "closed")
            self.connections.pop(conn_id, None)
            self.connection_closed(conn)
            self._connections_changed()

    async def _pump(
        self, conn: RelayConnection, direction: str, reader: asyncio.StreamReader, pipe: Pipe
    ) -> None:
        source = "client" if direction == V2P else "upstream"
        writer = conn.writer(direction)
        try:
            while chunk := await reader.read(READ_SIZE):
                await pipe.feed(chunk)
                await writer.drain()
            await pipe.finish()
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            # Closed on purpose already (a fault): an orderly close must stay orderly,
            # or bytes written just before it would be lost.
            if conn.reason is None:
                conn.reset(f"{source} reset: {exc.__class__.__name__}")
            return
        if conn.reason is not None:
            return  # closed on purpose (a fault, or stop()): no half-close to pass on
        # Half-close: the other peer may still send, so only this direction ends.
        if writer.can_write_eof() and not writer.transport.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
        conn.half_closed.append(source)
        self.connection_half_closed(conn, source)
        if len(conn.half_closed) == 2:
            conn.close(f"{conn.half_closed[0]} closed")


def _endpoint(address: Any) -> Endpoint:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return ("0.0.0.0", 0)


R = TypeVar("R", bound=Relay)


class RelayThread(Generic[R]):
    """A relay on its own event loop in a daemon thread, for synchronous code.

        with RelayThread(WireTap("t", "127.0.0.1", port, trace=trace)) as tap:
            socket.create_connection(("127.0.0.1", tap.port))
    """

    def __init__(self, relay: R) -> None:
        self.relay = relay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.relay.port

    def start(self) -> RelayThread[R]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"relay-{self.relay.name}", daemon=True)
        self._thread.start()
        ready.wait(CONNECT_TIMEOUT)
        self.run(self.relay.start())
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CONNECT_TIMEOUT) -> T:
        """Run a coroutine on the relay's loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self.relay.name} is not started")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a plain function on the relay's loop: the relay is not thread-safe."""

        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self.run(self.relay.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CONNECT_TIMEOUT)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> RelayThread[R]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
