"""The frame proxy as a relay: exact bytes, connections, closes, malformed streams."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from harness.chaos import FrameProxy, FrameProxyThread
from harness.trace import TraceWriter
from reference.protocol.errors import ErrorCode
from reference.protocol.frames import Frame, FrameDecoder, FrameType, encode_frame
from reference.protocol.messages import Heartbeat, Hello
from tests.chaos.peers import DEADLINE, FakePrimary, control, name_of, proxied, run, video


def test_no_fault_forwards_exact_bytes_both_ways() -> None:
    async def body() -> None:
        async with proxied() as s:
            viewer, primary = await s.connect()
            frames = [video(1, n, size=70_000 if n % 3 == 0 else 10) for n in range(20)]
            data = b"".join(encode_frame(f) for f in frames)
            # Odd chunk boundaries: frames split anywhere still arrive byte for byte.
            for start in range(0, len(data), 7919):
                await primary.send_raw(data[start : start + 7919])
            assert await viewer.raw_until(len(data)) == data
            await viewer.send(control(Hello()))
            assert name_of((await primary.recv(1))[0]) == "HELLO"

    run(body())


def test_connections_get_their_own_ids() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "drop", "frame_types": ["VIDEO"], "count": 2})
            pairs = [await s.connect() for _ in range(2)]
            assert sorted(s.proxy.connections) == ["c1", "c2"]
            for viewer, primary in pairs:
                await primary.send(video(1, 1), control(Heartbeat()))
                await viewer.recv(1)
            assert sorted(r["conn"] for r in s.faults(action="dropped")) == ["c1", "c2"]

    run(body())


def test_half_close_passes_both_ways() -> None:
    async def body() -> None:
        async with proxied() as s:
            viewer, primary = await s.connect()
            viewer.writer.write_eof()
            await primary.recv_until_closed()  # the Primary sees the Viewer's EOF...
            await primary.send(video(1, 1))  # ...and can still send
            await viewer.recv(1)
            primary.writer.write_eof()
            await viewer.recv_until_closed()
            assert [f.sequence for f in viewer.frames] == [1]
            await s.proxy.until_connections(0)

    run(body())


def test_close_and_reset_propagate() -> None:
    async def body() -> None:
        async with proxied() as s:
            viewer, primary = await s.connect()
            primary.close()
            await viewer.recv_until_closed()
            viewer.close()
            viewer, primary = await s.connect()
            sock = viewer.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            viewer.writer.transport.abort()
            await primary.recv_until_closed()
            await s.proxy.until_connections(0)

    run(body())


@pytest.mark.parametrize("with_fault", [False, True])
def test_malformed_stream_is_forwarded_raw(with_fault: bool) -> None:
    async def body() -> None:
        async with proxied() as s:
            if with_fault:
                s.proxy.add_fault({"type": "delay", "direction": "p2v", "delay_ms": 20})
            viewer, primary = await s.connect()
            good = encode_frame(video(1, 1)) + encode_frame(control(Heartbeat()))
            garbage = b"XX" + bytes(range(40))
            await primary.send_raw(good + garbage)
            await primary.send_raw(b"more raw bytes")
            expected = good + garbage + b"more raw bytes"
            assert await viewer.raw_until(len(expected)) == expected
            assert viewer.error is not None and viewer.error.code is ErrorCode.BAD_MAGIC
            (error,) = [r for r in s.trace.snapshot() if r["kind"] == "wire_error"]
            assert error["source"] == "frame_proxy" and error["conn"] == "c1"
            assert error["dir"] == "p2v" and error["code"] == "bad_magic"
            assert error["offset"] == len(good)
            # The other direction still decodes and faults.
            s.proxy.add_fault({"type": "duplicate", "direction": "v2p"})
            await viewer.send(control(Heartbeat()))
            assert len(await primary.recv(2)) == 2

    run(body())


def test_stop_leaves_no_task_behind() -> None:
    async def body() -> None:
        before = asyncio.all_tasks()
        primary = FakePrimary()
        await primary.start()
        proxy = FrameProxy("127.0.0.1", primary.port, trace=TraceWriter())
        await proxy.start()
        proxy.add_fault({"type": "stall", "duration": 30})
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        upstream = await primary.accept()
        await upstream.send(video(1, 1))
        await proxy.stop()
        with pytest.raises(ConnectionResetError):  # stop() resets what is still open
            await asyncio.wait_for(reader.read(), DEADLINE)
        assert asyncio.all_tasks() <= before
        writer.close()
        await primary.stop()

    run(body())


def test_unreachable_upstream_closes_the_client() -> None:
    async def body() -> None:
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        async with FrameProxy("127.0.0.1", port) as proxy:
            assert isinstance(proxy, FrameProxy)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                data = await asyncio.wait_for(reader.read(), DEADLINE)
            except ConnectionError:
                data = b""
            assert data == b""
            writer.close()

    run(body())


def test_thread_wrapper_from_synchronous_code() -> None:
    trace = TraceWriter()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(DEADLINE)
        port = server.getsockname()[1]
        with FrameProxyThread("127.0.0.1", port, trace=trace, seed=1) as proxy:
            fault_id = proxy.add_fault({"type": "drop", "frame_types": ["VIDEO"]})
            with socket.create_connection(("127.0.0.1", proxy.port), DEADLINE) as viewer:
                viewer.settimeout(DEADLINE)
                upstream, _ = server.accept()
                with upstream:
                    upstream.sendall(encode_frame(video(1, 1)) + encode_frame(control(Hello())))
                    frames = _read_frames(viewer, 1)
                    assert [f.type for f in frames] == [FrameType.CONTROL]
                    proxy.remove_fault(fault_id)
                    upstream.sendall(encode_frame(video(1, 2)))
                    assert _read_frames(viewer, 1)[0].sequence == 2
            proxy.clear()
    actions = [r["action"] for r in trace.records if r["kind"] == "fault"]
    assert actions == ["added", "dropped", "removed"]


def _read_frames(sock: socket.socket, count: int) -> list[Frame]:
    decoder, frames = FrameDecoder(), list[Frame]()
    while len(frames) < count:
        data = sock.recv(65536)
        assert data, "closed early"
        decoder.feed(data)
        frames += decoder.frames()
    return frames

