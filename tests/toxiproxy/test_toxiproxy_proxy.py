"""The data path without toxics, enabling and disabling, toxicity, live changes and
chaining, all measured on real sockets."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests
from toxiproxy_peers import ProxyHandle, RecordingSink, TcpServer, recv_until_closed, round_trip

from harness.toxiproxy import EmbeddedToxiproxy

MakeProxy = Callable[[str], ProxyHandle]


def test_echo_through_the_proxy(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    with proxy.connect() as sock:
        for size in (1, 100, 70_000):
            round_trip(sock, bytes(range(256)) * (size // 256) + b"x" * (size % 256))


def test_bulk_transfer_is_intact(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    payload = (b"0123456789abcdef" * 4096) * 256  # 16 MiB
    proxy = make_proxy(echo_server.address)
    digest = hashlib.sha256()
    with proxy.connect(timeout=30) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = 0
        while received < len(payload):
            data = sock.recv(1 << 20)
            assert data
            digest.update(data)
            received += len(data)
        sender.join(30)
    assert digest.digest() == hashlib.sha256(payload).digest()


def test_disabled_proxy_drops_connections_and_refuses_new_ones(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    proxy = make_proxy(echo_server.address)
    with proxy.connect() as sock:
        round_trip(sock)
        proxy.set_enabled(False)
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
    with pytest.raises(ConnectionRefusedError):
        proxy.connect()
    proxy.set_enabled(True)
    with proxy.connect() as sock:
        round_trip(sock)


def test_unreachable_upstream_closes_the_client(make_proxy: MakeProxy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    proxy = make_proxy(dead)
    with proxy.connect() as sock:
        assert recv_until_closed(sock) == b""


@pytest.mark.parametrize("upstream", ["127.0.0.1:99999", "127.0.0.1:no-such-service", "nohost"])
def test_an_upstream_that_cannot_be_dialled_closes_the_client(
    make_proxy: MakeProxy, upstream: str
) -> None:
    """Like a refused dial: accepted at creation (as Toxiproxy does), closed per client."""
    proxy = make_proxy(upstream)
    with proxy.connect() as sock:
        assert recv_until_closed(sock) == b""


def test_client_close_closes_upstream(make_proxy: MakeProxy, sink: RecordingSink) -> None:
    proxy = make_proxy(sink.address)
    with proxy.connect() as sock:
        sock.sendall(b"bye")
    recording = sink.next_recording()
    recording.wait_for(lambda r: r.closed)
    assert recording.data == b"bye"


def test_toxicity_zero_never_applies(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("latency", toxicity=0.0, latency=2000)
    for _ in range(5):
        with proxy.connect() as sock:
            assert round_trip(sock) < 0.5


def _latency_pattern(seed: int, echo_address: str, connections: int) -> list[bool]:
    with EmbeddedToxiproxy(seed=seed) as server:
        listen = requests.post(f"{server.url}/proxies", json={
            "name": "seeded", "listen": "127.0.0.1:0", "upstream": echo_address}).json()["listen"]
        requests.post(f"{server.url}/proxies/seeded/toxics", json={
            "type": "latency", "toxicity": 0.5, "attributes": {"latency": 60}})
        host, port = listen.rsplit(":", 1)
        pattern = []
        for _ in range(connections):
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                pattern.append(round_trip(sock) > 0.04)
        return pattern


def test_toxicity_is_per_connection_and_seedable(echo_server: TcpServer) -> None:
    first = _latency_pattern(7, echo_server.address, 10)
    assert any(first) and not all(first), first
    assert _latency_pattern(7, echo_server.address, 10) == first


def test_live_update_and_removal_apply_to_open_connections(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    proxy = make_proxy(echo_server.address)
    with proxy.connect() as sock:
        assert round_trip(sock) < 0.05
        proxy.add_toxic("latency", latency=150)
        assert round_trip(sock) >= 0.145
        proxy.update_toxic("latency_downstream", attributes={"latency": 0})
        assert round_trip(sock) < 0.1
        proxy.update_toxic("latency_downstream", attributes={"latency": 150})
        assert round_trip(sock) >= 0.145
        proxy.remove_toxic("latency_downstream")
        assert round_trip(sock) < 0.1
        round_trip(sock, b"z" * 200_000)  # back on the fast path, nothing lost or reordered


def test_removing_a_toxic_mid_delay_keeps_the_data(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("latency", latency=5000)
    with proxy.connect() as sock:
        sock.sendall(b"held")
        started = time.perf_counter()
        # The round trip cannot finish while the toxic holds the reply; remove it.
        proxy.remove_toxic("latency_downstream")
        assert sock.recv(16) == b"held"
        assert time.perf_counter() - started < 2.0


def test_toxics_chain_in_order(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("latency", name="first", latency=100)
    proxy.add_toxic("latency", name="second", latency=100)
    proxy.add_toxic("latency", name="up", stream="upstream", latency=50)
    with proxy.connect() as sock:
        elapsed = round_trip(sock)
    # Each toxic counts from when the previous one let the chunk go, so they add up.
    assert 0.25 <= elapsed < 0.35, elapsed


def test_a_stream_survives_toxics_toggled_under_load(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    """Every byte arrives once and in order while toxics come and go mid-transfer, the
    data switching between the fast path, pass-through stubs (a toxic skipped by
    toxicity is one), toxics and the writer's direct writes. (The ordering rules behind
    it are tested one by one in test_toxiproxy_stream.py.)"""
    payload = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    proxy = make_proxy(echo_server.address)
    digest = hashlib.sha256()
    with proxy.connect(timeout=30) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = 0
        toggles = 0
        while received < len(payload):
            data = sock.recv(65536)
            assert data
            digest.update(data)
            received += len(data)
            if toggles < 40 and received > toggles * len(payload) // 50:
                stream = ("upstream", "downstream")[toggles % 2]
                if toggles % 4 < 2:
                    proxy.add_toxic("latency", stream=stream, name=f"lag-{stream}", latency=1)
                    proxy.add_toxic("slicer", stream=stream, name=f"cut-{stream}",
                                    toxicity=0.5, average_size=4096, size_variation=1000)
                else:
                    proxy.remove_toxic(f"lag-{stream}")
                    proxy.remove_toxic(f"cut-{stream}")
                toggles += 1
        sender.join(30)
    assert toggles >= 20, toggles
    assert digest.digest() == hashlib.sha256(payload).digest()
