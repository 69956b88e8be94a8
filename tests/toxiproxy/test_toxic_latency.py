"""latency: every chunk is delayed by latency +/- jitter milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from toxiproxy_peers import ProxyHandle, TcpServer, round_trip

MakeProxy = Callable[[str], ProxyHandle]
# Timers on a loaded machine fire late, never early: allow 2 ms under, 60 ms over.
EARLY_S, LATE_S = 0.002, 0.060


def baseline(proxy: ProxyHandle) -> float:
    with proxy.connect() as sock:
        return statistics.median(round_trip(sock) for _ in range(5))


def test_latency_is_added_per_direction(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    direct = baseline(proxy)
    proxy.add_toxic("latency", latency=120)
    with proxy.connect() as sock:
        added = round_trip(sock) - direct
    assert 0.120 - EARLY_S <= added <= 0.120 + LATE_S, added

    proxy.add_toxic("latency", stream="upstream", latency=80)
    with proxy.connect() as sock:
        added = round_trip(sock) - direct
    assert 0.200 - EARLY_S <= added <= 0.200 + LATE_S, added


def test_jitter_spreads_the_delay(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("latency", latency=40, jitter=30)
    with proxy.connect() as sock:
        samples = [round_trip(sock) for _ in range(12)]
    assert all(0.010 - EARLY_S <= s <= 0.070 + LATE_S for s in samples), samples
    assert max(samples) - min(samples) > 0.010, samples


def test_queued_chunks_are_not_delayed_twice(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("latency", latency=150)
    payloads = [bytes([65 + i]) * 1000 for i in range(10)]
    with proxy.connect() as sock:
        started = time.perf_counter()
        for payload in payloads:
            sock.sendall(payload)
        received = b""
        while len(received) < 10_000:
            data = sock.recv(65536)
            assert data
            received += data
        elapsed = time.perf_counter() - started
    assert received == b"".join(payloads)
    # Ten writes back to back arrive about one latency later, not ten latencies.
    assert 0.150 - EARLY_S <= elapsed <= 0.150 + LATE_S, elapsed
