"""Pick the Toxiproxy the harness talks to: an external one, the real binary, or the embedded one.

Order of preference:
1. `TOXIPROXY_URL` is set: use that server as it is ("external"); nothing is started.
2. `toxiproxy-server` is on PATH: start it on a free loopback port ("binary").
3. Otherwise start `EmbeddedToxiproxy` in this process ("embedded").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests
import toxiproxy

from harness.toxiproxy.server import EmbeddedToxiproxy

Kind = Literal["external", "binary", "embedded"]
BINARY_NAME = "toxiproxy-server"
URL_ENV = "TOXIPROXY_URL"


@dataclass(frozen=True)
class ToxiproxyServer:
    url: str
    kind: Kind

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 8474


def free_loopback_port() -> int:
    # The port could be taken between here and the binary's bind; the launcher
    # retries with a fresh port when the binary fails to come up.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_version(url: str, deadline_s: float, process: subprocess.Popen[bytes] | None) -> bool:
    """Poll `GET /version` until it answers, the process dies, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if requests.get(f"{url}/version", timeout=0.5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        # Polling a process we do not control: there is no event to wait on.
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def binary_server(
    path: str, *, startup_timeout_s: float = 10.0, attempts: int = 3
) -> Iterator[ToxiproxyServer]:
    """Run the real `toxiproxy-server` on a free loopback port for the duration."""
    for _ in range(attempts):
        port = free_loopback_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [path, "-host", "127.0.0.1", "-port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if wait_for_version(url, startup_timeout_s, process):
                yield ToxiproxyServer(url, "binary")
                return
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    raise RuntimeError(f"{path} did not answer on /version after {attempts} attempts")


@contextlib.contextmanager
def embedded_server(seed: int | None = None) -> Iterator[ToxiproxyServer]:
    with EmbeddedToxiproxy(seed=seed) as server:
        yield ToxiproxyServer(server.url, "embedded")


@contextlib.contextmanager
def toxiproxy_server(*, seed: int | None = None) -> Iterator[ToxiproxyServer]:
    """The Toxiproxy to use, chosen as the module docstring says; `seed` only affects
    the embedded server (the real one cannot be seeded)."""
    external = os.environ.get(URL_ENV)
    if external:
        yield ToxiproxyServer(external.rstrip("/"), "external")
        return
    binary = shutil.which(BINARY_NAME)
    if binary is not None:
        with binary_server(binary) as server:
            yield server
        return
    with embedded_server(seed) as server:
        yield server


def toxiproxy_client(server: ToxiproxyServer | str) -> toxiproxy.Toxiproxy:
    """A toxiproxy-python client for `server`.

    That client keeps host and port in class attributes of its APIConsumer, so
    this points *every* client in the process at `server`; two servers cannot be
    driven through it at the same time.
    """
    target = server if isinstance(server, ToxiproxyServer) else ToxiproxyServer(server, "external")
    client = toxiproxy.Toxiproxy()
    client.update_api_consumer(target.host, target.port)
    return client
