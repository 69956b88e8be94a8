"""The impairer on a real TUN device: UDP datagrams counted, TCP through the packet hop."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Iterator

import pytest
from packet_support import USERSPACE, needs_tun

from harness.packet.hop import PacketHop
from harness.packet.impairer import Impairer
from harness.packet.impairment import Impairment
from harness.packet.ipv4 import DIRECTIONS, DOWNSTREAM, UPSTREAM
from harness.packet.tun import TunDevice
from harness.trace import TraceWriter

pytestmark = needs_tun
SO_RCVBUFFORCE = 33  # Linux; the socket module does not name it


@pytest.fixture
def impairer() -> Iterator[Impairer]:
    tun = TunDevice()
    running = Impairer(tun, seed=5)
    running.start()
    yield running
    running.stop()
    tun.close()


def _wait_until_seen(impairer: Impairer, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while impairer.stats()[UPSTREAM].get("packets", 0) < count:
        assert time.monotonic() < deadline, "the impairer did not see the packets in time"
        time.sleep(0.001)  # waiting on another thread's counter, with a deadline


def _send_datagrams(impairer: Impairer, count: int) -> int:
    """Send `count` datagrams upstream in paced batches; how many reached the receiver."""
    addresses = impairer.tun.addresses
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    receiver.bind((addresses.text("local"), 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind((addresses.text("local"), 0))
    target = (addresses.text("primary"), receiver.getsockname()[1])
    sent = 0
    with receiver, sender:
        while sent < count:
            batch = min(500, count - sent)
            for _ in range(batch):
                sender.sendto(b"lvs" * 20, target)
            sent += batch
            # Paced by the impairer, so the device queue never drops what we count.
            _wait_until_seen(impairer, sent, 10)
        received = 0
        receiver.settimeout(1.0)
        try:
            while received < count:
                receiver.recv(2048)
                received += 1
        except TimeoutError:
            pass
    return received


def test_a_clean_device_loses_nothing(impairer: Impairer) -> None:
    assert _send_datagrams(impairer, 20_000) == 20_000


def test_loss_on_the_device_within_one_point(impairer: Impairer) -> None:
    """20,000 datagrams at 5 % loss: measured loss within 1 percentage point, and it is
    exactly what the lane counted (nothing else lost on the way)."""
    impairer.set(UPSTREAM, Impairment(loss=0.05))
    received = _send_datagrams(impairer, 20_000)
    assert abs((1 - received / 20_000) - 0.05) < 0.01
    assert impairer.stats()[UPSTREAM]["loss"] == 20_000 - received


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _hop(tmp_path: object = None) -> tuple[asyncio.Server, PacketHop, TraceWriter]:
    server, port = await _echo_server()
    trace = TraceWriter()
    hop = PacketHop("127.0.0.1", port, seed=3, trace=trace, backend=USERSPACE)
    await hop.start()
    return server, hop, trace


def test_delay_adds_to_the_round_trip() -> None:
    """50 ms each way: every 1-byte echo takes at least 100 ms (the delay is never cut
    short); the median is under 200 ms (the relays, the event loop and a 2-core machine
    shared with other jobs; the exact schedule is tested sans-IO in test_packet_lane)."""

    async def scenario() -> list[float]:
        server, hop, _ = await _hop()
        hop.impair(DIRECTIONS, Impairment(delay_ms=50))
        reader, writer = await asyncio.open_connection("127.0.0.1", hop.port)
        trips = []
        for _ in range(8):
            began = time.monotonic()
            writer.write(b"x")
            await reader.readexactly(1)
            trips.append(time.monotonic() - began)
        writer.close()
        await hop.stop()
        server.close()
        return trips

    trips = asyncio.run(scenario())
    assert min(trips) >= 0.100
    assert statistics.median(trips) < 0.200


def test_blackhole_one_direction_then_clear() -> None:
    """Downstream blackholed: the echo never comes back within 1 s; cleared, TCP retransmits
    and it arrives within 5 s. The changes are traced as `fault` records."""

    async def scenario() -> list[dict[str, object]]:
        server, hop, trace = await _hop()
        reader, writer = await asyncio.open_connection("127.0.0.1", hop.port)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        hop.impair((DOWNSTREAM,), Impairment(blackhole=True))
        writer.write(b"b")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(1), 1.0)
        assert hop.stats()[DOWNSTREAM]["blackhole"] >= 1
        assert hop.stats()[UPSTREAM].get("blackhole", 0) == 0
        hop.impair((DOWNSTREAM,), Impairment())
        assert await asyncio.wait_for(reader.readexactly(1), 5.0) == b"b"
        writer.close()
        await hop.stop()
        server.close()
        return [r for r in trace.snapshot() if r["kind"] == "fault"]

    faults = asyncio.run(scenario())
    assert [(f["fault"], f["direction"]) for f in faults] == [
        ("impair", DOWNSTREAM),
        ("cleared", DOWNSTREAM),
    ]
    assert faults[0]["blackhole"] is True and faults[0]["source"] == "packet"


def test_rate_limit_bounds_a_bulk_transfer() -> None:
    """8000 kbit/s downstream: 1 MB of payload (about 1.04 MB of IP packets) never arrives
    faster than the rate allows (1.0 s), and not absurdly slower (3 s, for a loaded host)."""

    async def scenario() -> float:
        server, hop, _ = await _hop()
        hop.impair((DOWNSTREAM,), Impairment(rate_kbit=8000, queue_limit=10_000))
        reader, writer = await asyncio.open_connection("127.0.0.1", hop.port)
        payload = b"v" * 1_000_000
        began = time.monotonic()
        writer.write(payload)
        await reader.readexactly(len(payload))
        took = time.monotonic() - began
        writer.close()
        await hop.stop()
        server.close()
        return took

    took = asyncio.run(scenario())
    assert 1.0 <= took <= 3.0, took
