"""One direction of one proxied connection (Toxiproxy's `link.go`).

    source socket > noop stub > toxic stub > ... > toxic stub > writer > destination socket

Every link starts with a hidden noop stub, so the first real toxic can be
inserted or removed by interrupting the stub before it. While a link has no
toxics and nothing queued, bytes go straight from the source's `buffer_updated`
to the destination transport: no chunk object, no task hop, no copy. That keeps
the proxy's own cost out of the measurements when no fault is being injected.

Sockets are read into one buffer per event-loop thread (`ReadBuffer`) instead of
a fresh `bytes` per read: asyncio's default read allocates 256 KiB for every
`recv`, which glibc may serve with mmap/mremap/munmap; in-process that tripled
the added round-trip time (p50 40 µs against 15 µs now) and grew RSS steadily.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from harness.toxiproxy.stream import ChunkChannel, Direction, LinkBudget, StreamChunk
from harness.toxiproxy.toxics import NoopToxic, ToxicStub

if TYPE_CHECKING:
    from harness.toxiproxy.toxic_collection import ToxicWrapper

_NOOP = NoopToxic()
# A transport's buffer may hold this much before the link stops reading its source.
WRITE_BUFFER_HIGH = 512 * 1024


# Go's io.Copy reads 32 KiB at a time; bigger reads cost nothing here and move bulk
# data in fewer loop iterations.
READ_SIZE = 256 * 1024


class ReadBuffer(threading.local):
    """Where every socket of this thread's event loop is read into.

    A read is handed on before the next `recv_into` on the thread can start: the
    fast path writes it (see `take_back_if_queued`), every other path copies it.
    """

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_SIZE))

    def take_back_if_queued(self, transport: asyncio.Transport) -> None:
        """After writing a slice of the buffer: if the transport queued (part of) it,
        it may keep a reference to our memory (CPython 3.12+ queues memoryviews
        as they are), so the buffer is left to it and a new one is used."""
        if transport.get_write_buffer_size():
            self.view = memoryview(bytearray(READ_SIZE))


READ_BUFFER = ReadBuffer()


class Endpoint(asyncio.BufferedProtocol):
    """One TCP socket of a connection: the source of one link, the destination of the other."""

    def __init__(self, on_made: Callable[[Endpoint], None], on_lost: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.source_of: ToxicLink | None = None
        self.dest_of: ToxicLink | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False
        self._on_made = on_made
        self._on_lost = on_lost

    # --- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        # Nothing may be read before both legs exist and the links are wired.
        self.transport.pause_reading()
        self._on_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return READ_BUFFER.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.source_of is not None:
            self.source_of.feed(READ_BUFFER.view[:nbytes])

    def eof_received(self) -> bool:
        if self.source_of is not None:
            self.source_of.feed_eof()
        # Keep the socket open: the link closes it once the toxics have flushed.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.writable.set()  # never leave a writer waiting on a dead socket
        if self.source_of is not None:
            self.source_of.feed_eof()
        self._on_lost()

    def pause_writing(self) -> None:
        self.writable.clear()
        if self.dest_of is not None:
            self.dest_of.update_reading()

    def resume_writing(self) -> None:
        self.writable.set()
        if self.dest_of is not None:
            self.dest_of.update_reading()

    # --- used by links and connections -------------------------------------------
    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.open:
            assert self.transport is not None
            self.transport.write(data)

    def write_read_buffer(self, data: memoryview) -> None:
        """Write a slice of `READ_BUFFER` without copying it."""
        if self.open:
            assert self.transport is not None
            self.transport.write(data)
            READ_BUFFER.take_back_if_queued(self.transport)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def set_linger_zero(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None and sock.fileno() >= 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class WriterChannel(ChunkChannel):
    """The channel the link's writer task drains. A chunk put while it is empty and the
    destination takes data is written at once: nothing is queued ahead of it and the
    writer holds nothing between its reads, so the order is the same, one task hop
    per chunk fewer. End of stream always queues, so the writer closes after the rest."""

    def __init__(self, budget: LinkBudget, write_now: Callable[[StreamChunk], bool]) -> None:
        super().__init__(budget)
        self._write_now = write_now

    def put(self, chunk: StreamChunk | None) -> None:
        if chunk is not None and not len(self) and self._write_now(chunk):
            return
        super().put(chunk)


class ToxicLink:
    def __init__(
        self,
        direction: Direction,
        source: Endpoint,
        dest: Endpoint,
        chain: list[ToxicWrapper],
        rng: random.Random,
        reset_connection: Callable[[], None],
    ) -> None:
        self.direction = direction
        self.source = source
        self.dest = dest
        source.source_of = self
        dest.dest_of = self
        self.budget = LinkBudget(self.update_reading)
        self._rng = rng
        self._reset_connection = reset_connection
        self._reset_requested = False
        self._loop = asyncio.get_running_loop()
        self._head = ChunkChannel(self.budget)
        self.stubs: list[ToxicStub] = [self._new_stub(self._head, "")]
        self.wrappers: list[ToxicWrapper | None] = [None]
        for wrapper in chain:
            self.stubs.append(self._new_stub(self.stubs[-1].output, wrapper.name))
            self.wrappers.append(wrapper)
        # New stubs are always spliced in before this channel, so it stays the writer's.
        self._output = WriterChannel(self.budget, self._write_now)
        self.stubs[-1].output = self._output
        self._writer: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self._reading_paused = True
        self._eof = False

    def _new_stub(self, input: ChunkChannel, name: str) -> ToxicStub:
        stub = ToxicStub(input, ChunkChannel(self.budget), self._rng, self._request_reset)
        stub.name = name
        return stub

    def _run(self, index: int) -> None:
        if self._stopped:
            return  # the connection went away during a live change
        wrapper = self.wrappers[index]
        if wrapper is None:
            self.stubs[index].run(_NOOP, 1.0)
        else:
            self.stubs[index].run(wrapper.toxic, wrapper.toxicity)

    def start(self) -> None:
        for index, wrapper in enumerate(self.wrappers):
            if wrapper is not None:
                self.stubs[index].state = wrapper.toxic.new_state()
            self._run(index)
        self._writer = self._loop.create_task(self._write())
        self._started = True
        self.update_reading()

    def stop(self) -> None:
        self._stopped = True
        for stub in self.stubs:
            stub.cancel()
        if self._writer is not None:
            self._writer.cancel()

    # --- the data path ------------------------------------------------------------
    def feed(self, data: memoryview) -> None:
        """Bytes just read from the source, still in `READ_BUFFER`."""
        if len(self.stubs) == 1 and self.budget.items == 0:
            # Fast path: no toxic, and nothing queued that these bytes could overtake.
            self.dest.write_read_buffer(data)
            return
        self._head.put(StreamChunk(bytes(data), self._loop.time()))

    def feed_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._head.put(None)

    def _write_now(self, chunk: StreamChunk) -> bool:
        """Write a chunk the writer task would take next anyway, saving its wake-up."""
        if not self._started or not self.dest.writable.is_set():
            return False
        self.dest.write(chunk.data)
        return True

    async def _write(self) -> None:
        while True:
            if not self.dest.writable.is_set():
                await self.dest.writable.wait()
            chunk = await self._output.get()
            if chunk is None:
                break
            self.dest.write(chunk.data)
        # As in Toxiproxy, the end of one direction closes the whole destination socket
        # (no half-close); the other direction then ends when its read fails.
        if self._reset_requested:
            self.dest.abort()
        else:
            self.dest.close()

    def _request_reset(self) -> None:
        self._reset_requested = True
        self._reset_connection()

    def update_reading(self) -> None:
        """Pause the source while the destination is backed up or the toxics hold too much."""
        transport = self.source.transport
        if not self._started or transport is None or transport.is_closing():
            return
        backed_up = not self.dest.writable.is_set()
        if self._reading_paused:
            pause = backed_up or self.budget.bytes >= LinkBudget.LOW_WATER
        else:
            pause = backed_up or self.budget.bytes > LinkBudget.HIGH_WATER
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # --- live changes to the chain ---------------------------------------------------
    async def add_toxic(self, wrapper: ToxicWrapper) -> None:
        if self._stopped:
            return  # torn down while the change was on its way
        last = self.stubs[-1]
        stub = self._new_stub(ChunkChannel(self.budget), wrapper.name)
        stub.output = last.output
        self.stubs.append(stub)
        self.wrappers.append(wrapper)
        if await last.interrupt():
            last.output = stub.input
            stub.state = wrapper.toxic.new_state()
            self._run(len(self.stubs) - 1)
            self._run(len(self.stubs) - 2)
        else:
            # The stream already ended before this point; keep the chain aligned with
            # the collection, but let nothing reach the (already closed) real output.
            stub.output = stub.input
            stub.close()

    async def update_toxic(self, wrapper: ToxicWrapper) -> None:
        if self._stopped:
            return
        index = self.wrappers.index(wrapper)
        if await self.stubs[index].interrupt():
            self._run(index)

    async def remove_toxic(self, wrapper: ToxicWrapper) -> None:
        if self._stopped:
            return
        index = self.wrappers.index(wrapper)
        stub = self.stubs[index]
        if await stub.interrupt():
            wrapper.toxic.cleanup(stub)
        if stub.closed:
            # The stream ends at this toxic; whatever is upstream of it goes nowhere.
            del self.stubs[index], self.wrappers[index]
            return
        previous = self.stubs[index - 1]
        running = await previous.interrupt()
        # What the removed toxic had not read yet follows what it already passed on.
        stub.input.move_to(stub.output)
        previous.output = stub.output
        del self.stubs[index], self.wrappers[index]
        if running:
            self._run(index - 1)
