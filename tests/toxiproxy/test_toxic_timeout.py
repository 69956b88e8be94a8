"""timeout: data stops; the connection closes after `timeout` ms, or never for 0."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from toxiproxy_peers import ProxyHandle, TcpServer, recv_until_closed

MakeProxy = Callable[[str], ProxyHandle]


def test_timeout_holds_data_then_closes(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("timeout", timeout=300)
    with proxy.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"hello?")
        assert recv_until_closed(sock) == b"", "no data gets through"
        elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 1.5, elapsed


def test_timeout_zero_holds_forever_until_removed(
    make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("timeout", timeout=0)
    with proxy.connect(timeout=0.6) as sock:
        sock.sendall(b"anyone?")
        with pytest.raises(socket.timeout):
            sock.recv(16)  # neither data nor a close within the socket timeout
        # As in Toxiproxy, removing a timeout toxic closes the connections it held.
        proxy.remove_toxic("timeout_downstream")
        sock.settimeout(5)
        assert recv_until_closed(sock) == b""
