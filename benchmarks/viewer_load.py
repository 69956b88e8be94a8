"""How many header-only Viewers one Primary serves at 1280x720, 30 fps, p99 latency < 50 ms.

    python benchmarks/viewer_load.py [--counts 10,25,50,...] [--seconds 6]

The Primary runs in its own process (`harness primary`), as in the field; the
Viewers are reference Viewers with `decode=False` in this process. Latency is
capture-to-delivery: the Primary stamps each frame with its capture time on the
host's monotonic clock, and a Viewer subtracts it from its arrival time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.states import ViewerState

TARGET_P99 = 0.050


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_primary(port: int, fps: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "primary", "--listen", f"127.0.0.1:{port}",
         "--secret", "bench", "--width", "1280", "--height", "720", "--fps", str(fps),
         "--bitrate", "2000000", "--quiet", "--codec-backend", "software"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the Primary did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(port: int, count: int, seconds: float, fps: int) -> dict[str, float]:
    viewers = [
        ReferenceViewer(ViewerConfig("127.0.0.1", port, "bench", decode=False, viewer_id=f"v{i}",
                                     seed=i))
        for i in range(count)
    ]
    tasks = [asyncio.create_task(v.run()) for v in viewers]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not all(v.state is ViewerState.STREAMING for v in viewers):
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.1)  # benchmark warm-up, not a test synchronisation
    for v in viewers:
        v.stats.latencies.clear()
    await asyncio.sleep(seconds)  # the measurement window
    samples = [lat for v in viewers for lat in v.stats.latencies]
    streaming = sum(v.state is ViewerState.STREAMING for v in viewers)
    for v in viewers:
        v.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = count * seconds * fps
    return {
        "viewers": count, "streaming": streaming,
        "delivered": len(samples) / expected if expected else 0.0,
        "p50": statistics.median(samples) if samples else float("nan"),
        "p99": percentile(samples, 0.99) if samples else float("nan"),
        "max": max(samples) if samples else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,25,50,75,100,150")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Header-only Viewers on one 1280x720@{args.fps} Primary (this host)")
    for column in ("viewers", "streaming", "frames delivered", "p50 ms", "p99 ms", "max ms",
                   "p99 < 50 ms"):
        table.add_column(column, justify="right")
    best = 0
    for count in (int(c) for c in args.counts.split(",")):
        port = free_port()
        primary = start_primary(port, args.fps)
        try:
            row = asyncio.run(measure(port, count, args.seconds, args.fps))
        finally:
            primary.terminate()
            primary.wait(10)
        ok = row["p99"] < TARGET_P99 and row["delivered"] > 0.95 and row["streaming"] == count
        best = count if ok else best
        table.add_row(str(count), str(int(row["streaming"])), f"{row['delivered']:.1%}",
                      f"{row['p50'] * 1000:.1f}", f"{row['p99'] * 1000:.1f}",
                      f"{row['max'] * 1000:.1f}", "yes" if ok else "no")
        console.print(f"{count} viewers: p99 {row['p99'] * 1000:.1f} ms, "
                      f"delivered {row['delivered']:.1%}")
        if not ok:
            break
    console.print(table)
    console.print(f"largest count meeting the target: {best} Viewers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
