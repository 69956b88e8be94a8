"""The wire tap on real sockets: trace records of every frame both ways, and the pcap."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.trace import Record, TraceWriter
from harness.wire.pcap import PcapWriter, read_pcap_streams
from harness.wire.recorder import WireTap, wire_tap_thread
from reference.protocol.frames import Frame, FrameFlags, FrameType, encode_frame
from reference.protocol.messages import AuthChallenge, Hello, Message, Proto

DEADLINE = 5.0


def _control(message: Message) -> Frame:
    return Frame(FrameType.CONTROL, message.encode())


VIEWER_SENDS = [_control(Hello()), _control(Hello(client="other", version=1))]
PRIMARY_SENDS = [
    _control(Proto(version=2)),
    _control(AuthChallenge(nonce="ab" * 16)),
    Frame(FrameType.CSD, b"\x00\x00\x00\x01\x67", epoch=3, sequence=1, timestamp_us=5),
    Frame(FrameType.VIDEO, b"\x01" * 100_000, epoch=3, sequence=2, timestamp_us=2_000_000,
          flags=FrameFlags.KEYFRAME),
    Frame(FrameType.AUDIO, b"\x02" * 50, epoch=3, sequence=3, timestamp_us=2_010_000),
]


def _wire(frames: list[Frame]) -> bytes:
    return b"".join(encode_frame(f) for f in frames)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


class TraceWaiter:
    """Waits, with a deadline, for a record the tap writes from its own thread."""

    def __init__(self, trace: TraceWriter) -> None:
        self.trace = trace

    def wait(self, **match: Any) -> Record:
        found = threading.Event()

        def matches(record: Record) -> bool:
            return all(record.get(k) == v for k, v in match.items())

        def listener(record: Record) -> None:
            if matches(record):
                found.set()

        self.trace.subscribe(listener)
        try:
            if not any(matches(r) for r in self.trace.snapshot()):
                assert found.wait(DEADLINE), f"no record {match}"
        finally:
            self.trace.unsubscribe(listener)
        return next(r for r in self.trace.snapshot() if matches(r))


@contextmanager
def primary_socket() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(DEADLINE)
        yield server


def test_tap_records_every_frame_both_ways_and_the_pcap(tmp_path: Path) -> None:
    trace, pcap_path = TraceWriter(), tmp_path / "wire.pcapng"
    with primary_socket() as server, PcapWriter(str(pcap_path)) as pcap:
        port = server.getsockname()[1]
        with wire_tap_thread("viewer_side", "127.0.0.1", port, trace=trace, pcap=pcap) as tap:
            viewer = socket.create_connection(("127.0.0.1", tap.port), DEADLINE)
            primary, _ = server.accept()
            with viewer, primary:
                viewer.settimeout(DEADLINE)
                primary.settimeout(DEADLINE)
                viewer.sendall(_wire(VIEWER_SENDS))
                primary.sendall(_wire(PRIMARY_SENDS))
                assert _recv_exactly(primary, len(_wire(VIEWER_SENDS))) == _wire(VIEWER_SENDS)
                assert _recv_exactly(viewer, len(_wire(PRIMARY_SENDS))) == _wire(PRIMARY_SENDS)
                viewer_address = viewer.getsockname()
                viewer.shutdown(socket.SHUT_WR)
                assert primary.recv(1) == b""  # the half-close went through the tap
                primary.close()
                assert viewer.recv(1) == b""
                closed = TraceWaiter(trace).wait(kind="conn", event="close")
    records = trace.snapshot()
    for direction, sent in (("v2p", VIEWER_SENDS), ("p2v", PRIMARY_SENDS)):
        seen = [r for r in records if r["kind"] == "frame" and r["dir"] == direction]
        assert [(r["type"], r["epoch"], r["seq"], r["ts"], r["len"], r["flags"], r["key"])
                for r in seen] == [
            (f.type.name, f.epoch, f.sequence, f.timestamp_us, len(f.payload), int(f.flags),
             f.is_keyframe)
            for f in sent
        ]
        assert all(r["tap"] == "viewer_side" and r["conn"] == "c1" for r in seen)
        assert [r.get("msg") for r in seen] == [
            f.payload.decode() if f.type is FrameType.CONTROL else None for f in sent]
    times = [r["t"] for r in records if r["kind"] == "frame"]
    assert all(isinstance(t, float) for t in times)
    opened = next(r for r in records if r["kind"] == "conn" and r["event"] == "open")
    assert opened["peer"] == f"127.0.0.1:{viewer_address[1]}"
    assert opened["upstream"] == f"127.0.0.1:{port}"
    assert closed["reason"] == "client closed" and "unfinished" not in closed

    (conn,) = read_pcap_streams(str(pcap_path))
    assert conn.client == ("127.0.0.1", viewer_address[1])
    assert conn.server == ("127.0.0.1", port)
    assert conn.frames_sent("c2s") == VIEWER_SENDS
    assert conn.frames_sent("s2c") == PRIMARY_SENDS
    assert conn.errors == [] and conn.unfinished == {}
    assert conn.interface == "viewer_side"
    # Capture time minus the writer's anchor is the trace's time of the same frame
    # (a frame completed by one read: both stamp that read); 1 µs for float rounding.
    captured = {(c.direction, c.frame.sequence): c.timestamp for c in conn.frames}
    for r in records:
        if r["kind"] == "frame":
            at = captured["c2s" if r["dir"] == "v2p" else "s2c", r["seq"]]
            assert at - pcap.wall_clock_offset == pytest.approx(r["t"], abs=1e-6)


def test_malformed_direction_is_recorded_once_and_forwarded_raw() -> None:
    trace = TraceWriter()
    garbage = b"\x00\x01junk that is no LVS header at all"
    with primary_socket() as server:
        port = server.getsockname()[1]
        with wire_tap_thread("primary_side", "127.0.0.1", port, trace=trace) as tap:
            viewer = socket.create_connection(("127.0.0.1", tap.port), DEADLINE)
            primary, _ = server.accept()
            with viewer, primary:
                viewer.settimeout(DEADLINE)
                primary.settimeout(DEADLINE)
                sent = _wire(PRIMARY_SENDS[:1]) + garbage
                primary.sendall(sent)
                assert _recv_exactly(viewer, len(sent)) == sent
                primary.sendall(b"and more")
                assert _recv_exactly(viewer, 8) == b"and more"
                viewer.sendall(_wire(VIEWER_SENDS[:1]))
                _recv_exactly(primary, len(_wire(VIEWER_SENDS[:1])))
                waiter = TraceWaiter(trace)
                waiter.wait(kind="frame", dir="v2p")
                error = waiter.wait(kind="wire_error")
    assert error["tap"] == "primary_side" and error["conn"] == "c1" and error["dir"] == "p2v"
    assert error["code"] == "bad_magic" and error["offset"] == len(_wire(PRIMARY_SENDS[:1]))
    records = trace.snapshot()
    assert len([r for r in records if r["kind"] == "wire_error"]) == 1
    assert [r["dir"] for r in records if r["kind"] == "frame"] == ["p2v", "v2p"]


def test_two_taps_share_one_capture(tmp_path: Path) -> None:
    """Viewer -> tap viewer_side -> tap primary_side -> Primary, as a scenario builds it."""

    async def body() -> None:
        trace, pcap_path = TraceWriter(), tmp_path / "chain.pcapng"
        got: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await got.put((reader, writer))

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with PcapWriter(str(pcap_path)) as pcap:
            inner = WireTap("primary_side", "127.0.0.1", port, trace=trace, pcap=pcap)
            await inner.start()
            outer = WireTap("viewer_side", "127.0.0.1", inner.port, trace=trace, pcap=pcap)
            await outer.start()
            v_reader, v_writer = await asyncio.open_connection("127.0.0.1", outer.port)
            p_reader, p_writer = await asyncio.wait_for(got.get(), DEADLINE)
            v_writer.write(_wire(VIEWER_SENDS))
            p_writer.write(_wire(PRIMARY_SENDS))
            received = await asyncio.wait_for(
                v_reader.readexactly(len(_wire(PRIMARY_SENDS))), DEADLINE
            )
            assert received == _wire(PRIMARY_SENDS)
            await asyncio.wait_for(p_reader.readexactly(len(_wire(VIEWER_SENDS))), DEADLINE)
            p_writer.close()
            assert await asyncio.wait_for(v_reader.read(), DEADLINE) == b""
            v_writer.close()
            await outer.until_connections(0)
            await inner.until_connections(0)
            await outer.stop()
            await inner.stop()
        server.close()
        await server.wait_closed()
        connections = read_pcap_streams(str(pcap_path))
        assert len(connections) == 2
        assert {c.server[1] for c in connections} == {port, inner.port}
        interfaces = {c.server[1]: c.interface for c in connections}
        assert interfaces == {port: "primary_side", inner.port: "viewer_side"}
        for conn in connections:
            assert conn.frames_sent("c2s") == VIEWER_SENDS
            assert conn.frames_sent("s2c") == PRIMARY_SENDS
        for tap in ("viewer_side", "primary_side"):
            frames = [r for r in trace.snapshot() if r["kind"] == "frame" and r["tap"] == tap]
            assert len(frames) == len(VIEWER_SENDS) + len(PRIMARY_SENDS)
            closes = [r for r in trace.snapshot() if r["kind"] == "conn" and r["tap"] == tap
                      and r["event"] == "close"]
            assert [c["reason"] for c in closes] == ["upstream closed"]

    asyncio.run(asyncio.wait_for(body(), 15))

