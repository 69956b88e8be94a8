"""What the frame proxy and the wire tap cost with no fault: throughput and added latency.

    .venv/bin/python benchmarks/frame_proxy_overhead.py [--size-mb 256] [--samples 3000]

Unlike a byte-level proxy, these decode LVS frames, so the traffic is frames:

* throughput: one connection sends `--size-mb` MiB of VIDEO frames with 64 KiB
  payloads to a sink, announced by a first CONTROL frame `HEARTBEAT|bytes=N`;
  the sink answers one CONTROL frame after the last byte. MB/s (10^6 bytes),
  best of three runs;
* latency: `--samples` ping-pongs of a small CONTROL frame with an echo server,
  alternating one for one with ping-pongs straight to the echo server; p50/p99
  through the relay and the *added* p50/p99 (relayed minus direct percentile of
  the same interleaved run).

The echo and sink servers run in one process and each relay in another, so
neither shares a GIL with the client. Rows: direct loopback, the frame proxy
with no fault, the frame proxy with a fault that matches nothing (every frame
takes the decode/fault/re-encode path), the wire tap writing its trace, and
the wire tap also writing a pcap.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reference.protocol.frames import HEADER, HEADER_SIZE, Frame, FrameType, encode_frame

Address = tuple[str, int]
HOST = "127.0.0.1"
PAYLOAD = 64 * 1024
PING = encode_frame(Frame(FrameType.CONTROL, b"HEARTBEAT"))


# --- the peers (own process) ----------------------------------------------------------


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return bytes(data)


def _echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def _sink(conn: socket.socket) -> None:
    while True:
        header = conn.recv(HEADER_SIZE, socket.MSG_WAITALL)
        if len(header) < HEADER_SIZE:
            return
        length = HEADER.unpack(header)[-1]
        announced = int(_recv_exactly(conn, length).decode().split("bytes=")[1])
        remaining = announced
        while remaining:
            got = conn.recv_into(memoryview(bytearray(min(remaining, 1 << 20))))
            if not got:
                return
            remaining -= got
        conn.sendall(PING)


def _serve(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_handle, args=(handler, conn), daemon=True).start()


def _handle(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn:
        try:
            handler(conn)
        except OSError:
            pass


def _peers_process(pipe: multiprocessing.connection.Connection) -> None:
    ports = []
    for handler in (_echo, _sink):
        listener = socket.create_server((HOST, 0))
        ports.append(listener.getsockname()[1])
        threading.Thread(target=_serve, args=(listener, handler), daemon=True).start()
    pipe.send(ports)
    pipe.recv()  # until told to stop


# --- the relays (own process each) ------------------------------------------------------


def _relay_process(kind: str, upstream: int, pipe: multiprocessing.connection.Connection) -> None:
    from harness.chaos import FrameProxy
    from harness.trace import TraceWriter
    from harness.wire.pcap import PcapWriter
    from harness.wire.recorder import WireTap
    from harness.wire.relay import Relay

    async def main() -> None:
        relay: Relay
        pcap = None
        trace = TraceWriter(Path(tempfile.mkdtemp()) / "trace.jsonl", keep=False)
        if kind.startswith("frame proxy"):
            proxy = FrameProxy(HOST, upstream, trace=trace)
            relay = proxy
        else:
            if "pcap" in kind:
                pcap = PcapWriter(str(Path(tempfile.mkdtemp()) / "wire.pcap"))
            relay = WireTap("bench", HOST, upstream, trace=trace, pcap=pcap)
        await relay.start()
        if "fault" in kind:
            proxy.add_fault({"type": "drop", "frame_types": ["AUDIO"]})
        pipe.send(relay.port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await relay.stop()
        if pcap is not None:
            pcap.close()
        trace.close()

    asyncio.run(main())


@contextmanager
def _process(target: Callable[..., None], *args: object) -> Iterator[object]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()


# --- the measurements ---------------------------------------------------------------------


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def throughput_mb_s(port: int, size: int, runs: int = 3) -> float:
    frame = encode_frame(Frame(FrameType.VIDEO, b"\x5a" * PAYLOAD, epoch=1))
    count = max(1, size // len(frame))
    total = count * len(frame)
    announce = encode_frame(Frame(FrameType.CONTROL, f"HEARTBEAT|bytes={total}".encode()))
    best = 0.0
    for _ in range(runs):
        with connect(port) as sock:
            started = time.perf_counter()
            sock.sendall(announce)
            batch = frame * 16
            for _ in range(count // 16):
                sock.sendall(batch)
            for _ in range(count % 16):
                sock.sendall(frame)
            _recv_exactly(sock, len(PING))
            elapsed = time.perf_counter() - started
        best = max(best, total / elapsed / 1e6)
    return best


def _ping(sock: socket.socket) -> float:
    started = time.perf_counter()
    sock.sendall(PING)
    _recv_exactly(sock, len(PING))
    return (time.perf_counter() - started) * 1e6


def round_trips_us(relayed: int, direct: int, samples: int) -> tuple[list[float], list[float]]:
    with connect(relayed) as via, connect(direct) as straight:
        for _ in range(200):  # warm-up
            _ping(via)
            _ping(straight)
        through, plain = [], []
        for _ in range(samples):
            through.append(_ping(via))
            plain.append(_ping(straight))
    return through, plain


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--pcap-mb", type=int, default=256)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args(argv)
    console = Console()
    table = Table(title="Frame proxy and wire tap overhead on loopback (no fault active)")
    for column in ("path", "MB/s", "RTT p50 µs", "RTT p99 µs", "added p50 µs", "added p99 µs"):
        table.add_column(column, justify="left" if column == "path" else "right")
    size = args.size_mb << 20
    rows: list[list[str]] = []
    direct_samples: list[float] = []
    with _process(_peers_process) as ports:
        assert isinstance(ports, list)
        echo, sink = ports
        direct_mb_s = throughput_mb_s(sink, size)
        for kind in ("frame proxy", "frame proxy + 1 fault (no match)", "wire tap",
                     "wire tap + pcap"):
            # A fresh relay process per measurement: no state carried between them.
            with _process(_relay_process, kind, sink) as sink_port:
                assert isinstance(sink_port, int)
                bulk = args.pcap_mb << 20 if "pcap" in kind else size
                mb_s = throughput_mb_s(sink_port, bulk)
            with _process(_relay_process, kind, echo) as echo_port:
                assert isinstance(echo_port, int)
                through, plain = round_trips_us(echo_port, echo, args.samples)
            direct_samples += plain
            p50, p99 = percentile(through, 0.5), percentile(through, 0.99)
            rows.append([
                kind, f"{mb_s:.0f}", f"{p50:.0f}", f"{p99:.0f}",
                f"{p50 - percentile(plain, 0.5):.0f}", f"{p99 - percentile(plain, 0.99):.0f}",
            ])
    # The direct round trips are the ones interleaved with the relayed ones.
    table.add_row("direct", f"{direct_mb_s:.0f}", f"{percentile(direct_samples, 0.5):.0f}",
                  f"{percentile(direct_samples, 0.99):.0f}", "-", "-")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.platform()}, {os.cpu_count()} CPUs; {args.size_mb} MiB of "
        f"{PAYLOAD // 1024} KiB VIDEO frames ({args.pcap_mb} MiB with pcap), "
        f"{args.samples} ping-pongs of a {len(PING)}-byte CONTROL frame"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
