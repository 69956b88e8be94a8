"""The HTTP layer of the embedded server on raw sockets, where Go's net/http (which the
real Toxiproxy runs on) decides what a client sees: connection persistence, request
checks, header size limits and the slow-client timeouts of Toxiproxy's `api.go`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.toxiproxy import EmbeddedToxiproxy
from harness.toxiproxy.http11 import GO_MAX_HEADER_BYTES, Timeouts

# Fast timeouts for the timeout tests; the same code paths as Toxiproxy's 15/30/60 s.
SHORT = Timeouts(read_s=0.5, write_s=1.0, idle_s=0.5)
# A close must come after the timeout, and at most this much later on a loaded machine.
CLOSE_LATE_S = 1.5


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(url: str, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(_address(url), timeout=timeout)


def read_response(sock: socket.socket) -> RawResponse:
    """One response: headers, then Content-Length bytes, or everything up to EOF."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, f"connection closed before a full response head: {buffer!r}"
        buffer += data
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, status, reason = status_line.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            data = sock.recv(65536)
            assert data, "connection closed in the middle of a body"
            body += data
    else:
        body += recv_to_eof(sock)
    return RawResponse(version, int(status), reason, headers, body)


def recv_to_eof(sock: socket.socket) -> bytes:
    """Everything until the server closes; the socket's timeout fails a hang."""
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        pass
    return received


def exchange(url: str, request: bytes) -> tuple[RawResponse, bytes]:
    """Send `request`, read one response, then whatever follows until the server closes."""
    with connect(url) as sock:
        sock.sendall(request)
        response = read_response(sock)
        return response, recv_to_eof(sock)


@pytest.fixture(scope="module")
def fast_timeouts() -> Iterator[EmbeddedToxiproxy]:
    with EmbeddedToxiproxy(timeouts=SHORT) as server:
        yield server


# --- connection persistence ------------------------------------------------------------
def test_http10_without_keep_alive_is_closed_after_the_response(api: str) -> None:
    response, rest = exchange(api, b"GET /version HTTP/1.0\r\n\r\n")
    assert (response.version, response.status) == ("HTTP/1.0", 200)
    assert b'"version"' in response.body
    assert rest == b"", "the server must close, not wait for another request"


def test_http10_keep_alive_and_http11_keep_the_connection(api: str) -> None:
    with connect(api) as sock:
        for request in (b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                        b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\n\r\n",
                        b"GET /proxies HTTP/1.1\r\nHost: toxiproxy\r\n\r\n"):
            sock.sendall(request)
            assert read_response(sock).status == 200
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\nConnection: close\r\n\r\n")
        last = read_response(sock)
        assert last.headers["connection"] == "close"
        assert recv_to_eof(sock) == b""


# --- request checks ----------------------------------------------------------------------
@pytest.mark.parametrize("method", ["get", "Get", "post"])
def test_methods_are_case_sensitive(api: str, method: str) -> None:
    request = f"{method} /proxies HTTP/1.1\r\nHost: toxiproxy\r\nConnection: close\r\n\r\n"
    response, _ = exchange(api, request.encode())
    assert response.status == 405


def test_http11_without_host_is_a_400(api: str) -> None:
    response, rest = exchange(api, b"GET /version HTTP/1.1\r\n\r\n")
    assert response.status == 400
    assert response.reason == "Bad Request: missing required Host header"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.body + rest == b"400 Bad Request: missing required Host header"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /version HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /version HTTX/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /version\r\nHost: x\r\n\r\n", 400),
        (b"GET /version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /version HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}", 400),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n{}", 400),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + b"1" * (2 << 20), 400),
    ],
)
def test_malformed_requests_get_net_http_statuses(
    api: str, request_bytes: bytes, status: int
) -> None:
    response, rest = exchange(api, request_bytes)
    assert response.status == status
    assert response.headers["connection"] == "close" and rest == b""


# --- header size -------------------------------------------------------------------------
def _with_header(size: int) -> bytes:
    return (b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\nX-Big: " + b"a" * size
            + b"\r\nConnection: close\r\n\r\n")


def test_headers_up_to_go_max_header_bytes_are_accepted(api: str) -> None:
    for size in (64 * 1024, GO_MAX_HEADER_BYTES):
        response, _ = exchange(api, _with_header(size))
        assert response.status == 200, size


def test_headers_beyond_the_limit_get_431(api: str) -> None:
    response, rest = exchange(api, _with_header(GO_MAX_HEADER_BYTES + 8192))
    assert response.status == 431
    assert response.body + rest == b"431 Request Header Fields Too Large"
    # The server still serves others afterwards.
    assert exchange(api, b"GET /version HTTP/1.0\r\n\r\n")[0].status == 200


# --- timeouts ----------------------------------------------------------------------------
def test_default_timeouts_are_toxiproxys() -> None:
    """api.go: ReadTimeout 15 s, WriteTimeout 30 s, IdleTimeout 60 s."""
    assert Timeouts() == Timeouts(read_s=15.0, write_s=30.0, idle_s=60.0)
    assert EmbeddedToxiproxy().timeouts == Timeouts()


def _closed_after(sock: socket.socket, trickle: bytes = b"") -> float:
    """Seconds from now until the server closes `sock`, sending `trickle` a byte at a
    time every 50 ms meanwhile; the server must send nothing."""
    started = time.monotonic()
    sock.settimeout(0.05)
    for index in range(200):
        if index < len(trickle):
            try:
                sock.sendall(trickle[index:index + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
        try:
            data = sock.recv(1)
        except TimeoutError:
            continue
        except ConnectionResetError:
            data = b""
        assert data == b"", f"the server answered a request it never completed: {data!r}"
        return time.monotonic() - started
    raise AssertionError("the server never closed the slow client")


def test_a_client_trickling_its_headers_is_closed_at_the_read_timeout(
    fast_timeouts: EmbeddedToxiproxy,
) -> None:
    """Tolerance: the close comes no earlier than read_s - 50 ms (the deadline runs from
    the connection's start, however often bytes arrive) and within CLOSE_LATE_S after."""
    trickle = b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\nX-Slow: " + b"s" * 100
    with connect(fast_timeouts.url) as sock:
        elapsed = _closed_after(sock, trickle)
    assert SHORT.read_s - 0.05 <= elapsed <= SHORT.read_s + CLOSE_LATE_S, elapsed


def test_many_silent_clients_are_all_closed(fast_timeouts: EmbeddedToxiproxy) -> None:
    sockets = [connect(fast_timeouts.url) for _ in range(100)]
    try:
        deadline = time.monotonic() + SHORT.read_s + CLOSE_LATE_S + 2.0
        for sock in sockets:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            assert recv_to_eof(sock) == b""
    finally:
        for sock in sockets:
            sock.close()
    # Closing them made room: a well-behaved client is still served.
    response, _ = exchange(fast_timeouts.url, b"GET /version HTTP/1.0\r\n\r\n")
    assert response.status == 200


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(
    fast_timeouts: EmbeddedToxiproxy,
) -> None:
    with connect(fast_timeouts.url) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\n\r\n")
        assert read_response(sock).status == 200
        elapsed = _closed_after(sock)
    assert SHORT.idle_s - 0.05 <= elapsed <= SHORT.idle_s + CLOSE_LATE_S, elapsed


def test_a_slow_body_is_closed_at_the_read_timeout(fast_timeouts: EmbeddedToxiproxy) -> None:
    trickle = b'{"name": "slow", "upstream": "127.0.0.1:1"}'
    with connect(fast_timeouts.url) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: toxiproxy\r\n"
                     + f"Content-Length: {len(trickle)}\r\n\r\n".encode())
        elapsed = _closed_after(sock, trickle)
    assert elapsed <= SHORT.read_s + CLOSE_LATE_S, elapsed


def test_a_reader_that_never_reads_is_dropped_at_the_write_timeout(
    fast_timeouts: EmbeddedToxiproxy,
) -> None:
    """A client that sends requests but never reads the replies must not hold the server:
    once the socket buffers are full, the write timeout drops it (the client's sends fail)."""
    with connect(fast_timeouts.url) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        requests = b"GET /version HTTP/1.1\r\nHost: toxiproxy\r\n\r\n" * 1000
        dropped = threading.Event()

        def flood() -> None:
            try:
                while not dropped.is_set():
                    sock.sendall(requests)
            except OSError:
                dropped.set()

        threading.Thread(target=flood, daemon=True).start()
        try:
            assert dropped.wait(30), "the server kept a client that never reads"
        finally:
            dropped.set()
