"""The channels between toxics and the link's writer: a chunk handed on or written at
once must never overtake one already queued, and end of stream always waits for its
reader."""

from __future__ import annotations

import asyncio
import socket

from harness.toxiproxy.link import READ_BUFFER, WriterChannel
from harness.toxiproxy.stream import ChunkChannel, LinkBudget, StreamChunk


def _chunk(data: bytes) -> StreamChunk:
    return StreamChunk(data, 0.0)


def test_bypass_only_when_nothing_is_queued() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes | None]]:
        budget = LinkBudget(lambda: None)
        channel = ChunkChannel(budget)
        handed: list[bytes] = []
        channel.put(_chunk(b"queued-first"))
        channel.bypass = lambda chunk: handed.append(chunk.data)
        channel.put(_chunk(b"second"))  # must queue behind the first, not overtake it
        channel.put(None)
        read: list[bytes | None] = []
        while (chunk := await channel.get()) is not None:
            read.append(chunk.data)
        read.append(None)
        channel.put(_chunk(b"third"))  # empty again: handed on at once
        return handed, read

    handed, read = asyncio.run(scenario())
    assert read == [b"queued-first", b"second", None]
    assert handed == [b"third"]


def test_end_of_stream_is_never_bypassed() -> None:
    async def scenario() -> list[bytes | None]:
        channel = ChunkChannel(LinkBudget(lambda: None))
        channel.bypass = lambda chunk: None
        channel.put(None)
        return [await channel.get()]

    assert asyncio.run(scenario()) == [None]


def test_the_writer_channel_writes_at_once_only_behind_nothing() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        written: list[bytes] = []
        writable = False

        def write_now(chunk: StreamChunk) -> bool:
            if writable:
                written.append(chunk.data)
            return writable

        channel = WriterChannel(LinkBudget(lambda: None), write_now)
        channel.put(_chunk(b"while-blocked"))  # the destination is full: queued
        writable = True
        channel.put(_chunk(b"after"))  # must not overtake the queued chunk
        drained = []
        while len(channel):
            chunk = await channel.get()
            assert chunk is not None
            drained.append(chunk.data)
        channel.put(_chunk(b"direct"))
        return written, drained

    written, drained = asyncio.run(scenario())
    assert drained == [b"while-blocked", b"after"]
    assert written == [b"direct"]


def test_a_read_buffer_the_transport_queued_is_not_reused() -> None:
    """CPython 3.12+ queues a memoryview as it is when a send is partial: the loop's read
    buffer must then be left to the transport, or the next read would overwrite data
    that has not been sent yet. Checked on a real socket whose peer reads nothing."""

    async def scenario() -> tuple[bool, bytes]:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        view = READ_BUFFER.view
        view[:] = b"a" * len(view)
        transport.write(view)
        READ_BUFFER.take_back_if_queued(transport)
        replaced = READ_BUFFER.view is not view
        view[:] = b"b" * len(view)  # what the next read into a reused buffer would do
        received = b""
        peer.setblocking(False)
        while len(received) < len(view):
            received += await asyncio.wait_for(loop.sock_recv(peer, 1 << 20), 10)
        transport.close()
        peer.close()
        return replaced, received

    replaced, received = asyncio.run(scenario())
    assert replaced
    assert received == b"a" * len(received)
