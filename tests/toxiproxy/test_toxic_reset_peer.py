"""reset_peer: the connection is reset (TCP RST, so ECONNRESET) after `timeout` ms."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from toxiproxy_peers import ProxyHandle, TcpServer

MakeProxy = Callable[[str], ProxyHandle]


@pytest.mark.parametrize("timeout_ms", [0, 200])
def test_reset_peer_gives_econnreset(
    make_proxy: MakeProxy, echo_server: TcpServer, timeout_ms: int
) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("reset_peer", timeout=timeout_ms)
    with proxy.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"knock knock")
        with pytest.raises(ConnectionResetError):
            while sock.recv(16):
                pass
        elapsed = time.monotonic() - started
    assert timeout_ms / 1000 - 0.002 <= elapsed < timeout_ms / 1000 + 1.0, elapsed
