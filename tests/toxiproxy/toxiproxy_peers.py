"""Real TCP peers for the Toxiproxy tests (echo, recording sink) and small socket helpers.

Every wait is a socket timeout or a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

Handler = Callable[[socket.socket], None]


class TcpServer:
    """A threaded TCP server on 127.0.0.1:0 running `handler` per connection."""

    def __init__(self, handler: Handler) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._handler = handler
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self._handler(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


@dataclass
class Recording:
    """What a recording sink saw: each recv() as (monotonic time, bytes)."""

    reads: list[tuple[float, bytes]] = field(default_factory=list)
    closed: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.reads)

    def wait_for(self, predicate: Callable[[Recording], bool], timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"sink condition not met within {timeout}s")

    def wait_bytes(self, count: int, timeout: float = 10.0) -> None:
        self.wait_for(lambda r: sum(len(c) for _, c in r.reads) >= count, timeout)


class RecordingSink(TcpServer):
    def __init__(self) -> None:
        self.recordings: list[Recording] = []
        self._new = threading.Condition()
        super().__init__(self._record)

    def _record(self, conn: socket.socket) -> None:
        recording = Recording()
        with self._new:
            self.recordings.append(recording)
            self._new.notify_all()
        try:
            while data := conn.recv(65536):
                with recording.cond:
                    recording.reads.append((time.monotonic(), data))
                    recording.cond.notify_all()
        finally:
            with recording.cond:
                recording.closed = True
                recording.cond.notify_all()

    def next_recording(self, index: int = 0, timeout: float = 10.0) -> Recording:
        with self._new:
            if not self._new.wait_for(lambda: len(self.recordings) > index, timeout):
                raise AssertionError("no connection reached the sink")
            return self.recordings[index]


@dataclass
class ProxyHandle:
    api: str
    name: str
    listen: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listen.rsplit(":", 1)
        return host, int(port)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def add_toxic(self, type: str, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: int) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity,
                                "attributes": attributes}
        if name is not None:
            body["name"] = name
        response = requests.post(f"{self.api}/proxies/{self.name}/toxics", json=body, timeout=5)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def update_toxic(self, name: str, **body: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.api}/proxies/{self.name}/toxics/{name}", json=body, timeout=5
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def remove_toxic(self, name: str) -> None:
        response = requests.delete(f"{self.api}/proxies/{self.name}/toxics/{name}", timeout=5)
        assert response.status_code == 204, response.text

    def set_enabled(self, enabled: bool) -> None:
        response = requests.post(
            f"{self.api}/proxies/{self.name}", json={"enabled": enabled}, timeout=5
        )
        assert response.status_code == 200, response.text


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Send `payload` to an echo peer and read it back; seconds taken."""
    started = time.perf_counter()
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        data = sock.recv(65536)
        assert data, "connection closed during a round trip"
        received += data
    assert received == payload
    return time.perf_counter() - started


def recv_until_closed(sock: socket.socket) -> bytes:
    """Everything until EOF; the socket's own timeout bounds the wait."""
    received = b""
    while data := sock.recv(65536):
        received += data
    return received
