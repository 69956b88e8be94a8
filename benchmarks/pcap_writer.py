"""Raw `PcapWriter` throughput and per-call cost, with no relay around it.

    .venv/bin/python benchmarks/pcap_writer.py [--size-mb 256] [--calls 20000]
        [--baseline OLD_PCAP_PY --baseline-mb 16]

* bulk: one connection writes `--size-mb` MiB in 64 KiB chunks (what a
  relay reads at a time), then closes; MB/s (10^6 bytes) of payload, file
  flushed and closed included, best of three runs;
* small: `--calls` writes of a 33-byte CONTROL frame, each call timed;
  p50/p99/max µs (the cost a wire tap adds to a small frame).

`--baseline` loads a `PcapWriter` from another file (say the scapy-based
writer from git history) and measures it the same way, on `--baseline-mb`
MiB: a slow writer would take minutes on the full size.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reference.protocol.frames import Frame, FrameType, encode_frame

CHUNK = 64 * 1024
T0 = 1_000.0  # a CLOCK_MONOTONIC time, as the trace gives
CLIENT = ("127.0.0.1", 50_000)
SERVER = ("127.0.0.1", 7700)


def load_writer(path: str | None) -> Any:
    if path is None:
        from harness.wire.pcap import PcapWriter

        return PcapWriter
    spec = importlib.util.spec_from_file_location("baseline_pcap", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.PcapWriter


def bulk_mb_s(writer_class: Any, directory: Path, size: int, runs: int = 3) -> float:
    chunk = b"\x5a" * CHUNK
    count = max(1, size // CHUNK)
    best = 0.0
    for run in range(runs):
        path = directory / f"bulk{run}.pcapng"
        started = time.perf_counter()
        writer = writer_class(str(path))
        writer.open_connection("bulk", CLIENT, SERVER, T0)
        for number in range(count):
            writer.write("bulk", "s2c", chunk, T0 + number * 1e-5)
        writer.close_connection("bulk", T0 + 1)
        writer.close()
        elapsed = time.perf_counter() - started
        best = max(best, count * CHUNK / elapsed / 1e6)
        path.unlink()
    return best


def small_calls_us(writer_class: Any, directory: Path, calls: int) -> list[float]:
    frame = encode_frame(Frame(FrameType.CONTROL, b"HEARTBEAT"))
    path = directory / "small.pcapng"
    times = []
    with writer_class(str(path)) as writer:
        writer.open_connection("small", CLIENT, SERVER, T0)
        for number in range(calls):
            started = time.perf_counter()
            writer.write("small", "c2s", frame, T0 + number * 1e-5)
            times.append((time.perf_counter() - started) * 1e6)
    path.unlink()
    return sorted(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--baseline", help="a pcap.py whose PcapWriter to measure too")
    parser.add_argument("--baseline-mb", type=int, default=16)
    args = parser.parse_args(argv)
    table = Table(title="PcapWriter: payload throughput and cost of one small write")
    for column in ("writer", "MiB", "bulk MB/s", "small p50 µs", "small p99 µs", "small max µs"):
        table.add_column(column, justify="left" if column == "writer" else "right")
    candidates = [("harness.wire.pcap", None, args.size_mb)]
    if args.baseline:
        candidates.insert(0, (args.baseline, args.baseline, args.baseline_mb))
    with tempfile.TemporaryDirectory() as directory:
        for name, source, size_mb in candidates:
            writer_class = load_writer(source)
            mb_s = bulk_mb_s(writer_class, Path(directory), size_mb << 20)
            calls = small_calls_us(writer_class, Path(directory), args.calls)

            def at(fraction: float, values: list[float] = calls) -> float:
                return values[min(len(values) - 1, int(fraction * len(values)))]

            table.add_row(
                name, str(size_mb), f"{mb_s:.0f}", f"{at(0.5):.1f}", f"{at(0.99):.1f}",
                f"{calls[-1]:.0f}",
            )  # fmt: skip
    Console().print(table)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.platform()}, {os.cpu_count()} CPUs; {CHUNK // 1024} KiB chunks, "
        f"{args.calls} small writes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
