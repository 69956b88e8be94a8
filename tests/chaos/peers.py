"""A fake Primary and Viewer for the frame proxy tests: real sockets on 127.0.0.1.

`FramePeer` wraps one socket: send frames built with the reference codec,
receive them with `FrameDecoder`, each stamped with its arrival time. Every
wait has a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.chaos import FrameProxy
from harness.trace import Record, TraceWriter
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import Frame, FrameDecoder, FrameFlags, FrameType, encode_frame
from reference.protocol.messages import Message, UnknownMessage, decode_message

T = TypeVar("T")
DEADLINE = 5.0


def run(coro: Awaitable[T], timeout: float = 15.0) -> T:
    """Run one test body on a fresh loop, bounded."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def control(message: Message) -> Frame:
    return Frame(FrameType.CONTROL, message.encode())


def video(epoch: int, seq: int, *, key: bool = False, size: int = 64) -> Frame:
    return Frame(
        FrameType.VIDEO,
        bytes([seq & 0xFF]) * size,
        epoch=epoch,
        sequence=seq,
        timestamp_us=seq * 33_333,
        flags=FrameFlags.KEYFRAME if key else FrameFlags.NONE,
    )


def csd(epoch: int, seq: int = 0) -> Frame:
    return Frame(FrameType.CSD, b"\x00\x00\x00\x01\x67sps", epoch=epoch, sequence=seq)


def name_of(frame: Frame) -> str:
    if frame.type is not FrameType.CONTROL:
        return f"{frame.type.name}({frame.epoch}:{frame.sequence})"
    message = decode_message(frame.payload)
    return message.name if isinstance(message, UnknownMessage) else message.NAME


@dataclass(frozen=True)
class Arrival:
    t: float
    frame: Frame


class FramePeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.arrivals: list[Arrival] = []
        self.raw = bytearray()
        self.error: RemoteProtocolError | None = None
        self.eof = False

    async def send(self, *frames: Frame) -> None:
        await self.send_raw(b"".join(encode_frame(f) for f in frames))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    @property
    def frames(self) -> list[Frame]:
        return [a.frame for a in self.arrivals]

    async def _read_once(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"got {len(self.arrivals)} frames, eof={self.eof}")
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), remaining)
        except ConnectionError:
            data = b""
        t = time.monotonic()
        if not data:
            self.eof = True
            return
        self.raw += data
        if self.error is not None:
            return
        try:
            self.decoder.feed(data)
            while (frame := self.decoder.next_frame()) is not None:
                self.arrivals.append(Arrival(t, frame))
        except RemoteProtocolError as exc:
            self.error = exc

    async def recv(self, count: int, timeout: float = DEADLINE) -> list[Frame]:
        """Until `count` frames in all have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and not self.eof and self.error is None:
            await self._read_once(deadline)
        if len(self.arrivals) < count:
            raise AssertionError(f"only {len(self.arrivals)} of {count} frames: {self.error}")
        return self.frames

    async def recv_until(
        self, done: Callable[[FramePeer], bool], timeout: float = DEADLINE
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done(self) and not self.eof:
            await self._read_once(deadline)

    async def recv_until_closed(self, timeout: float = DEADLINE) -> list[Frame]:
        deadline = time.monotonic() + timeout
        while not self.eof:
            await self._read_once(deadline)
        return self.frames

    async def raw_until(self, size: int, timeout: float = DEADLINE) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.raw) < size and not self.eof:
            await self._read_once(deadline)
        return bytes(self.raw)

    def close(self) -> None:
        self.writer.close()


class FakePrimary:
    """Accepts connections and hands each over as a FramePeer, in order."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[FramePeer] = asyncio.Queue()
        self.peers: list[FramePeer] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = FramePeer(reader, writer)
        self.peers.append(peer)
        await self.accepted.put(peer)

    async def accept(self, timeout: float = DEADLINE) -> FramePeer:
        return await asyncio.wait_for(self.accepted.get(), timeout)

    async def stop(self) -> None:
        for peer in self.peers:
            peer.writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Setup:
    primary: FakePrimary
    proxy: FrameProxy
    trace: TraceWriter

    async def connect(self) -> tuple[FramePeer, FramePeer]:
        """A Viewer connected through the proxy, and the Primary's side of it."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.proxy.port)
        viewer = FramePeer(reader, writer)
        return viewer, await self.primary.accept()

    def faults(self, **match: Any) -> list[Record]:
        return [
            r
            for r in self.trace.snapshot()
            if r["kind"] == "fault" and all(r.get(k) == v for k, v in match.items())
        ]


    async def wait_faults(self, count: int = 1, timeout: float = DEADLINE, **match: Any) -> None:
        """Until the trace holds `count` fault records matching `match`."""
        arrived = asyncio.Event()
        loop = asyncio.get_running_loop()

        def listener(record: Record) -> None:
            if len(self.faults(**match)) >= count:
                loop.call_soon_threadsafe(arrived.set)

        self.trace.subscribe(listener)
        try:
            if len(self.faults(**match)) < count:
                await asyncio.wait_for(arrived.wait(), timeout)
        finally:
            self.trace.unsubscribe(listener)


@asynccontextmanager
async def proxied(seed: int = 0) -> AsyncIterator[Setup]:
    trace = TraceWriter()
    primary = FakePrimary()
    await primary.start()
    proxy = FrameProxy("127.0.0.1", primary.port, trace=trace, seed=seed)
    await proxy.start()
    try:
        yield Setup(primary, proxy, trace)
    finally:
        await proxy.stop()
        await primary.stop()
