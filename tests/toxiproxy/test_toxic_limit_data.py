"""limit_data: the connection closes once `bytes` bytes have passed."""

from __future__ import annotations

from collections.abc import Callable

from toxiproxy_peers import ProxyHandle, TcpServer, recv_until_closed

MakeProxy = Callable[[str], ProxyHandle]


def test_limit_data_closes_after_n_bytes(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("limit_data", bytes=1000)
    payload = bytes(range(250)) * 16  # 4000 bytes echoed back
    with proxy.connect() as sock:
        sock.sendall(payload)
        received = recv_until_closed(sock)
    assert received == payload[:1000]


def test_limit_data_counts_across_writes(make_proxy: MakeProxy, echo_server: TcpServer) -> None:
    proxy = make_proxy(echo_server.address)
    proxy.add_toxic("limit_data", bytes=10)
    with proxy.connect() as sock:
        sock.sendall(b"1234")
        assert sock.recv(16) == b"1234"
        sock.sendall(b"567890abc")
        assert recv_until_closed(sock) == b"567890"
