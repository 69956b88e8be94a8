"""What the userspace impairer costs, and how exactly it loses packets.

    .venv/bin/python benchmarks/packet_impairer.py [--size-mb 64] [--samples 2000]
                                                   [--packets 100000]

Needs root (CAP_NET_ADMIN). In one run, over three paths:

* direct veth: a TCP connection into a network namespace over a veth pair,
  no impairer (the baseline);
* impairer: the same TCP connection across the TUN device of a packet hop,
  the userspace impairer forwarding with no impairment configured;
* packet hop: what a scenario gets: the two relays around the impaired link.

For each: bulk throughput (one connection sends --size-mb MiB to a sink that
acknowledges the last byte; Mbit/s, best of three) and the round-trip time of
--samples 64-byte ping-pongs (p50, p99, and p99 added over the direct path).
The peers run in a separate process, so they do not share the impairer's GIL.

Then the loss accuracy: --packets UDP datagrams across the device at 1 %, 5 %
and 20 % configured loss (seeded), the measured loss beside the setting.

Floors from issue 13: 100 Mbit/s sustained and under 1 ms added p99 with no
impairment; loss within 1 percentage point of the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.table import Table

from harness.packet.backends import userspace
from harness.packet.hop import PacketHop
from harness.packet.impairer import Impairer
from harness.packet.impairment import Impairment
from harness.packet.ipv4 import UPSTREAM
from harness.packet.namespace import VethNamespace
from harness.packet.tun import TunDevice

MESSAGE = 64
BLOCK = 1 << 20
Address = tuple[str, int]


# --- the peers, in their own process (`--serve HOST`) ---------------------------------------
def _serve_one(conn: socket.socket) -> None:
    """First byte E: echo 64-byte messages. S: read an 8-byte length and that many bytes,
    then answer one byte."""
    with contextlib.suppress(OSError), conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kind = conn.recv(1)
        if kind == b"E":
            while message := _exactly(conn, MESSAGE):
                conn.sendall(message)
        elif kind == b"S":
            header = _exactly(conn, 8)
            left = struct.unpack("!Q", header)[0] if header else 0
            while left > 0:
                chunk = conn.recv(min(left, BLOCK))
                if not chunk:
                    return
                left -= len(chunk)
            conn.sendall(b"k")


def _exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def serve(host: str) -> None:
    listener = socket.create_server((host, 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()


@contextlib.contextmanager
def server_process(host: str, prefix: list[str] | None = None) -> Iterator[int]:
    command = [*(prefix or []), sys.executable, __file__, "--serve", host]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(5)


# --- the measurements --------------------------------------------------------------------
def throughput(target: Address, size_mb: int) -> float:
    """Mbit/s, best of three."""
    best = 0.0
    block = b"\0" * BLOCK
    for _ in range(3):
        with socket.create_connection(target) as conn:
            total = size_mb * BLOCK
            began = time.perf_counter()
            conn.sendall(b"S" + struct.pack("!Q", total))
            for _ in range(size_mb):
                conn.sendall(block)
            assert conn.recv(1) == b"k"
            best = max(best, total * 8 / (time.perf_counter() - began) / 1e6)
    return best


def round_trips(targets: list[Address], samples: int) -> list[list[float]]:
    """Milliseconds per 64-byte ping-pong on each path, interleaved one for one so that
    every path sees the same machine load."""
    out: list[list[float]] = [[] for _ in targets]
    message = b"p" * MESSAGE
    conns = [socket.create_connection(target) for target in targets]
    try:
        for conn in conns:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"E")
        for _ in range(samples):
            for conn, times in zip(conns, out, strict=True):
                began = time.perf_counter()
                conn.sendall(message)
                _exactly(conn, MESSAGE)
                times.append((time.perf_counter() - began) * 1000)
    finally:
        for conn in conns:
            conn.close()
    return out


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000)[int(share * 1000) - 1]


def measure_loss(rate: float, packets: int) -> float:
    """Measured loss of `packets` datagrams across the device at `rate`, paced by batches."""
    tun = TunDevice()
    impairer = Impairer(tun, seed=13)
    impairer.start()
    impairer.set(UPSTREAM, Impairment(loss=rate))
    local, primary = tun.addresses.text("local"), tun.addresses.text("primary")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, 33, 256 << 20)  # SO_RCVBUFFORCE
    receiver.bind((local, 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind((local, 0))
    target = (primary, receiver.getsockname()[1])
    received, sent = 0, 0
    receiver.setblocking(False)
    try:
        while sent < packets:
            for _ in range(min(500, packets - sent)):
                sender.sendto(b"x" * 32, target)
                sent += 1
            deadline = time.monotonic() + 10
            while impairer.stats()[UPSTREAM].get("packets", 0) < sent:
                if time.monotonic() > deadline:
                    raise RuntimeError("the impairer stopped reading")
                time.sleep(0.0005)  # the impairer thread's counter, with a deadline
            with contextlib.suppress(BlockingIOError):
                while True:
                    receiver.recv(64)
                    received += 1
        receiver.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            while received < sent:
                receiver.recv(64)
                received += 1
        counted = impairer.stats()[UPSTREAM].get("loss", 0)
        if counted != sent - received:
            print(f"  note: {sent - received - counted} datagram(s) lost outside the impairer")
    finally:
        receiver.close()
        sender.close()
        impairer.stop()
        tun.close()
    return 1 - received / sent


class HopThread:
    """A PacketHop on its own event loop, for the synchronous measurements."""

    def __init__(self, upstream: Address) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hop = PacketHop(*upstream, seed=1, backend=userspace())
        self._run(self.hop.start())

    def _run(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def close(self) -> None:
        self._run(self.hop.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="HOST", help=argparse.SUPPRESS)
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--packets", type=int, default=100_000)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    backend = userspace()
    if not backend.available:
        print(f"cannot measure the userspace impairer here: {backend.detail}")
        return 2
    console = Console()
    names = ["direct veth", "impairer (TUN)", "packet hop (relays + TUN)"]
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(VethNamespace())
        direct = (ns.inside, stack.enter_context(server_process(ns.inside, ns.exec([]))))
        tun = TunDevice()
        stack.callback(tun.close)
        impairer = Impairer(tun, seed=1)
        impairer.start()
        stack.callback(impairer.stop)
        local = tun.addresses.text("local")
        across = (tun.addresses.text("primary"), stack.enter_context(server_process(local)))
        hop = HopThread(("127.0.0.1", stack.enter_context(server_process("127.0.0.1"))))
        stack.callback(hop.close)
        targets = [direct, across, ("127.0.0.1", hop.hop.port)]
        speeds = [throughput(target, args.size_mb) for target in targets]
        trips = round_trips(targets, args.samples)
    rows = list(zip(names, speeds, trips, strict=True))
    base_p99 = percentile(rows[0][2], 0.99)
    table = Table(
        title=f"No impairment configured: {args.size_mb} MiB bulk, {args.samples} ping-pongs"
    )
    for column in ("path", "Mbit/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    base_p50 = statistics.median(rows[0][2])
    for name, mbit, trips in rows:
        p50, p99 = statistics.median(trips), percentile(trips, 0.99)
        direct = name == names[0]
        table.add_row(
            name,
            f"{mbit:,.0f}",
            f"{p50:.3f}",
            f"{p99:.3f}",
            "-" if direct else f"{p50 - base_p50:+.3f}",
            "-" if direct else f"{p99 - base_p99:+.3f}",
        )
    console.print(table)
    console.print(
        f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    loss = Table(title=f"Loss accuracy over {args.packets:,} datagrams (seed 13)")
    for column in ("configured", "measured", "difference (points)"):
        loss.add_column(column, justify="right")
    for rate in (0.01, 0.05, 0.20):
        measured = measure_loss(rate, args.packets)
        loss.add_row(f"{rate:.1%}", f"{measured:.2%}", f"{(measured - rate) * 100:+.2f}")
    console.print(loss)
    console.print(
        "A 720p LVS stream is about 4 Mbit/s; a soak of 50 Viewers about 200 Mbit/s. "
        "Floors: 100 Mbit/s, under 1 ms added p99, loss within 1 point."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
