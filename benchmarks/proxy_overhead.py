"""What a proxy in the path costs: bulk throughput and added round-trip latency.

    .venv/bin/python benchmarks/proxy_overhead.py [--size-mb 256] [--samples 3000]

For each entry of `PROXIES` (a name and a factory: given the upstream
(host, port), a context manager yielding the (host, port) to connect to) it
measures, on loopback:

* throughput: one connection sends `--size-mb` MiB to a sink that acknowledges
  the last byte; MB/s (10^6 bytes) over the best of three runs;
* latency: `--samples` ping-pongs of 64 bytes with an echo server through the
  proxy, alternating one for one with ping-pongs straight to the echo server;
  round-trip p50/p99 through the proxy, and the *added* p50/p99 (the proxied
  percentile minus the direct percentile of the same interleaved run).

With `--runs N` the latency measurement is repeated N times per proxy (a fresh
proxy each time) and every percentile is the median over the runs, which keeps
one scheduling hiccup on a shared machine from deciding a p99.

Shopify's server is measured too when it is reachable: `toxiproxy-server` on
PATH (started on a free port) and/or a running one at `TOXIPROXY_URL`. Then the
embedded server's added p99 is printed beside the real server's, with their
ratio (target: at most 1.5x); without one, beside direct loopback.

The echo and sink servers run in a separate process, so they do not share a
GIL with the client or with the embedded proxy. To add a proxy (the frame-level
one, say), append `(name, factory)` to `PROXIES` or call `register()`.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import platform
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import requests
from rich.console import Console
from rich.table import Table

from harness.toxiproxy import EmbeddedToxiproxy
from harness.toxiproxy.launcher import BINARY_NAME, URL_ENV, binary_server, free_loopback_port

Address = tuple[str, int]
ProxyFactory = Callable[[Address], AbstractContextManager[Address]]

MESSAGE = 64
SEND_BLOCK = 4 * 1024 * 1024


# --- the peers, in their own process ------------------------------------------------------
def _echo_loop(listener: socket.socket) -> None:
    """All echo connections on one thread: with a thread each, a reply's speed would
    depend on which thread holds the peer process's GIL."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(65536)
                if data:
                    sock.sendall(data)
                    continue
            except OSError:
                pass
            selector.unregister(sock)
            sock.close()


def _sink(conn: socket.socket) -> None:
    # Each transfer: an 8-byte length, that many bytes, then one acknowledgement byte.
    while header := conn.recv(8, socket.MSG_WAITALL):
        (remaining,) = struct.unpack("!Q", header)
        buffer = bytearray(1 << 20)
        while remaining:
            got = conn.recv_into(buffer, min(remaining, len(buffer)))
            if not got:
                return
            remaining -= got
        conn.sendall(b"k")


def _serve(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_handle, args=(handler, conn), daemon=True).start()


def _handle(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        handler(conn)


def _peer_process(pipe: multiprocessing.connection.Connection) -> None:
    echo = socket.create_server(("127.0.0.1", 0))
    sink = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_echo_loop, args=(echo,), daemon=True).start()
    threading.Thread(target=_serve, args=(sink, _sink), daemon=True).start()
    pipe.send([echo.getsockname()[1], sink.getsockname()[1]])
    pipe.recv()  # run until the parent says stop (or dies)


@contextlib.contextmanager
def peers() -> Iterator[tuple[Address, Address]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_peer_process, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("peer process did not start")
        echo_port, sink_port = parent.recv()
        yield ("127.0.0.1", echo_port), ("127.0.0.1", sink_port)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(5)
        if process.is_alive():
            process.kill()


# --- proxies under test ------------------------------------------------------------------
@contextlib.contextmanager
def direct(upstream: Address) -> Iterator[Address]:
    yield upstream


@contextlib.contextmanager
def _toxiproxy_proxy(url: str, upstream: Address) -> Iterator[Address]:
    name = f"bench{upstream[1]}"
    response = requests.post(f"{url}/proxies", json={
        "name": name, "listen": "127.0.0.1:0", "upstream": f"{upstream[0]}:{upstream[1]}",
    }, timeout=5)
    response.raise_for_status()
    host, port = response.json()["listen"].rsplit(":", 1)
    try:
        yield host, int(port)
    finally:
        requests.delete(f"{url}/proxies/{name}", timeout=5)


@contextlib.contextmanager
def embedded_toxiproxy(upstream: Address) -> Iterator[Address]:
    with EmbeddedToxiproxy() as server, _toxiproxy_proxy(server.url, upstream) as address:
        yield address


@contextlib.contextmanager
def embedded_toxiproxy_own_process(upstream: Address) -> Iterator[Address]:
    """The embedded server as `harness toxiproxy` runs it: a process of its own."""
    port = free_loopback_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
         "toxiproxy", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/version", timeout=1).ok:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("harness toxiproxy did not start")
            time.sleep(0.05)
        with _toxiproxy_proxy(url, upstream) as address:
            yield address
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def real_toxiproxy(upstream: Address) -> Iterator[Address]:
    path = shutil.which(BINARY_NAME)
    assert path is not None
    with binary_server(path) as server, _toxiproxy_proxy(server.url, upstream) as address:
        yield address


@contextlib.contextmanager
def external_toxiproxy(upstream: Address) -> Iterator[Address]:
    """The server at TOXIPROXY_URL, as the harness's launcher would use it."""
    with _toxiproxy_proxy(os.environ[URL_ENV].rstrip("/"), upstream) as address:
        yield address


DIRECT = "direct loopback"
EMBEDDED = ("embedded Toxiproxy (in-process)", "embedded Toxiproxy (own process)")
PROXIES: list[tuple[str, ProxyFactory]] = [
    (DIRECT, direct),
    (EMBEDDED[0], embedded_toxiproxy),
    (EMBEDDED[1], embedded_toxiproxy_own_process),
]
REAL: list[str] = []  # the rows that measure Shopify's server
if os.environ.get(URL_ENV):
    REAL.append(f"{URL_ENV} (real)")
    PROXIES.append((REAL[-1], external_toxiproxy))
if shutil.which(BINARY_NAME):
    REAL.append(f"{BINARY_NAME} (real)")
    PROXIES.append((REAL[-1], real_toxiproxy))
# The embedded server's added p99 may be at most this multiple of the real one's.
TARGET_P99_RATIO = 1.5


def register(name: str, factory: ProxyFactory) -> None:
    PROXIES.append((name, factory))


# --- measurements ------------------------------------------------------------------------
def connect(address: Address) -> socket.socket:
    sock = socket.create_connection(address, timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def throughput_mb_s(address: Address, size: int, runs: int = 3) -> float:
    block = memoryview(bytes(SEND_BLOCK))
    best = 0.0
    with connect(address) as sock:
        for _ in range(runs):
            started = time.perf_counter()
            sock.sendall(struct.pack("!Q", size))
            remaining = size
            while remaining:
                sent = sock.send(block[: min(remaining, SEND_BLOCK)])
                remaining -= sent
            if sock.recv(1) != b"k":
                raise RuntimeError("sink did not acknowledge the transfer")
            best = max(best, size / (time.perf_counter() - started) / 1e6)
    return best


def _ping(sock: socket.socket, message: bytes) -> float:
    started = time.perf_counter()
    sock.sendall(message)
    received = 0
    while received < len(message):
        received += len(sock.recv(len(message) - received))
    return (time.perf_counter() - started) * 1e6


def round_trips_us(
    direct_address: Address, address: Address, samples: int, warmup: int = 200
) -> tuple[list[float], list[float]]:
    """Ping-pong times through `address` and, alternating with them, straight to the
    echo server: both see the same machine state, so their difference is the proxy's."""
    message = b"p" * MESSAGE
    direct_us: list[float] = []
    proxied_us: list[float] = []
    with connect(direct_address) as direct_sock, connect(address) as sock:
        for index in range(warmup + samples):
            # Swap the order every other pair: the second ping of a pair finds the
            # CPUs already awake, which would otherwise favour one side.
            if index % 2:
                proxied_rtt = _ping(sock, message)
                direct_rtt = _ping(direct_sock, message)
            else:
                direct_rtt = _ping(direct_sock, message)
                proxied_rtt = _ping(sock, message)
            if index >= warmup:
                direct_us.append(direct_rtt)
                proxied_us.append(proxied_rtt)
    return direct_us, proxied_us


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Result:
    name: str
    mb_s: float
    p50_us: float
    p99_us: float
    direct_p50_us: float
    direct_p99_us: float

    @property
    def added_p99_us(self) -> float:
        return self.p99_us - self.direct_p99_us


def p99_comparison(results: list[Result]) -> list[str]:
    """The embedded server's added p99 beside the real server's, or beside direct loopback."""
    by_name = {result.name: result for result in results}
    lines = []
    for name in EMBEDDED:
        embedded = by_name[name]
        for real_name in REAL:
            real = by_name[real_name]
            ratio = embedded.added_p99_us / max(real.added_p99_us, 1.0)
            verdict = "meets" if ratio <= TARGET_P99_RATIO else "misses"
            lines.append(
                f"{name}: added p99 {embedded.added_p99_us:.0f} µs, {real_name} "
                f"{real.added_p99_us:.0f} µs: {ratio:.2f}x "
                f"({verdict} the {TARGET_P99_RATIO}x target)"
            )
        if not REAL:
            lines.append(
                f"{name}: added p99 {embedded.added_p99_us:.0f} µs beside direct loopback's "
                f"p99 of {by_name[DIRECT].p99_us:.0f} µs (no real Toxiproxy to compare with)"
            )
    return lines


def measure(name: str, factory: ProxyFactory, echo: Address, sink: Address,
            size: int, samples: int, runs: int = 1) -> Result:
    with factory(sink) as address:
        mb_s = throughput_mb_s(address, size)
    per_run: list[tuple[float, float, float, float]] = []
    for _ in range(runs):
        with factory(echo) as address:
            direct_us, rtts = round_trips_us(echo, address, samples)
        per_run.append((statistics.median(rtts), percentile(rtts, 0.99),
                        statistics.median(direct_us), percentile(direct_us, 0.99)))
    p50, p99, direct_p50, direct_p99 = (statistics.median(run[i] for run in per_run)
                                        for i in range(4))
    return Result(name, mb_s, p50, p99, direct_p50, direct_p99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256, help="MiB per throughput run")
    parser.add_argument("--samples", type=int, default=10000, help="ping-pongs per run")
    parser.add_argument("--runs", type=int, default=1,
                        help="latency runs per proxy; percentiles are their medians")
    parser.add_argument("--no-frames", action="store_true",
                        help="skip the frame proxy and wire tap (frame_proxy_overhead.py)")
    args = parser.parse_args(argv)

    console = Console(width=110)
    results: list[Result] = []
    with peers() as (echo, sink):
        for name, factory in PROXIES:
            results.append(measure(name, factory, echo, sink, args.size_mb << 20, args.samples,
                                   args.runs))

    table = Table(title="Proxy overhead on loopback")
    for column in ("proxy", "throughput MB/s", "RTT p50 µs", "RTT p99 µs",
                   "added p50 µs", "added p99 µs"):
        table.add_column(column, justify="left" if column == "proxy" else "right")
    for result in results:
        table.add_row(
            result.name,
            f"{result.mb_s:,.0f}",
            f"{result.p50_us:.0f}",
            f"{result.p99_us:.0f}",
            f"{result.p50_us - result.direct_p50_us:.0f}",
            f"{result.p99_us - result.direct_p99_us:.0f}",
        )
    console.print(table)
    console.print(
        f"{args.size_mb} MiB per throughput run (best of 3), {args.runs} x {args.samples} x "
        f"{MESSAGE}-byte ping-pongs (median of runs); Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}"
    )
    if not REAL:
        console.print(
            f"{BINARY_NAME} not on PATH and {URL_ENV} unset: real Toxiproxy not measured."
        )
    for line in p99_comparison(results):
        console.print(line)
    if not args.no_frames:
        # The frame proxy and the taps decode LVS frames, so they are measured on frames
        # (raw bytes would only exercise their undecodable-stream pass-through).
        import frame_proxy_overhead

        console.print("\nFrame-level relays, on LVS-framed traffic:")
        frame_proxy_overhead.main(
            ["--size-mb", str(args.size_mb), "--samples", str(min(args.samples, 3000))]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
