"""slow_close: the close reaches the peer `delay` ms after the stream ended."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from toxiproxy_peers import ProxyHandle, TcpServer, recv_until_closed

MakeProxy = Callable[[str], ProxyHandle]


def greet_and_close(conn: socket.socket) -> None:
    conn.sendall(b"bye")


@pytest.fixture
def closer() -> Iterator[TcpServer]:
    server = TcpServer(greet_and_close)
    yield server
    server.close()


@pytest.mark.parametrize("delay_ms", [0, 300])
def test_slow_close_delays_the_close(
    make_proxy: MakeProxy, closer: TcpServer, delay_ms: int
) -> None:
    proxy = make_proxy(closer.address)
    proxy.add_toxic("slow_close", delay=delay_ms)
    with proxy.connect() as sock:
        assert sock.recv(16) == b"bye"
        greeted = time.monotonic()
        assert recv_until_closed(sock) == b""
        waited = time.monotonic() - greeted
    assert delay_ms / 1000 - 0.01 <= waited < delay_ms / 1000 + 0.5, waited
