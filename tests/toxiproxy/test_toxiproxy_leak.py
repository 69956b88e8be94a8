"""Memory held by the embedded server stays bounded while a toxic is toggled on live,
busy connections: the pattern of a long soak (a latency toxic added and removed over and
over, traffic flowing, clients coming and going), measured with tracemalloc so the
answer does not depend on the allocator's RSS."""

from __future__ import annotations

import gc
import socket
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy_peers import TcpServer, round_trip

from harness.toxiproxy import EmbeddedToxiproxy, toxiproxy_client
from harness.toxiproxy.link import Endpoint, ToxicLink
from harness.toxiproxy.proxy import Connection, Proxy
from harness.toxiproxy.toxics import ToxicStub

WARMUP_CYCLES = 60
CYCLES = 150
# A cycle moves ~120 KB through the proxy and makes two API calls on fresh connections.
# Anything kept per cycle (a chunk, a stub, a connection, a task) is kilobytes; what may
# grow without being a leak (interpreter free lists, caches filling up) stays far below
# this bound: measured at about 330 bytes per cycle after the warm-up, most of it
# free lists still filling.
MAX_GROWTH_PER_CYCLE = 1024
PROXY_TYPES = (Connection, Endpoint, ToxicLink, ToxicStub)


@pytest.fixture
def server() -> Iterator[EmbeddedToxiproxy]:
    """A server of its own, so other tests' connections do not show in the counts."""
    with EmbeddedToxiproxy(seed=11) as embedded:
        yield embedded


def _proxy_objects() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, PROXY_TYPES))


def _wait_for_connections(proxy: Proxy, count: int, timeout: float = 10.0) -> None:
    """The server tears a connection down after both sockets are gone; wait for that."""
    deadline = time.monotonic() + timeout
    while len(proxy.connections) != count:
        assert time.monotonic() < deadline, f"{len(proxy.connections)} connections left"
        time.sleep(0.005)  # the server's loop thread owns this state; nothing to wait on


def _server_traces(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    # Only what the server's thread allocates; the test's own sockets and requests'
    # connection pools are not the server's memory.
    return snapshot.filter_traces([
        tracemalloc.Filter(True, "*/harness/toxiproxy/*"),
        tracemalloc.Filter(True, "*/asyncio/*"),
        tracemalloc.Filter(True, "*/json/*"),
    ])


def test_toggling_latency_under_traffic_holds_no_memory(
    server: EmbeddedToxiproxy, echo_server: TcpServer
) -> None:
    client: toxiproxy.Toxiproxy = toxiproxy_client(server.url)
    proxy_api = client.create(upstream=echo_server.address, name="soak")
    assert server._api is not None
    proxy = server._api.collection.get("soak")
    host, port = proxy_api.listen.rsplit(":", 1)
    payload = bytes(range(256)) * 80  # 20 KB

    def cycle(busy: socket.socket) -> None:
        proxy_api.add_toxic(type="latency", name="lag", attributes={"latency": 2})
        with socket.create_connection((host, int(port)), timeout=5) as short:
            round_trip(short, payload)
        round_trip(busy, payload)
        round_trip(busy, payload)
        proxy_api.destroy_toxic("lag")
        round_trip(busy, payload)

    with socket.create_connection((host, int(port)), timeout=5) as busy:
        for _ in range(WARMUP_CYCLES):
            cycle(busy)
        _wait_for_connections(proxy, 1)
        baseline_objects = _proxy_objects()
        tracemalloc.start(1)
        try:
            gc.collect()
            before = _server_traces(tracemalloc.take_snapshot())
            for _ in range(CYCLES):
                cycle(busy)
            _wait_for_connections(proxy, 1)
            gc.collect()
            after = _server_traces(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
        assert _proxy_objects() == baseline_objects
    stats = after.compare_to(before, "lineno")
    growth = sum(stat.size_diff for stat in stats)
    top = "\n".join(str(stat) for stat in stats[:5])
    assert growth <= MAX_GROWTH_PER_CYCLE * CYCLES, f"{growth} bytes kept:\n{top}"
    _wait_for_connections(proxy, 0)
    assert _proxy_objects() == Counter(), "the last connection is gone, and all it held"
