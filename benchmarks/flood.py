"""The reference Primary under connection floods and big-frame senders (issue 10).

    python benchmarks/flood.py [--silent 2000] [--big 200] [--max-unauthenticated 256]

The Primary runs in its own process (`harness primary`), so its memory is its
own; every client is in this process. One run prints, each beside its
baseline measured in the same run:

- the Primary's RSS before, and its peak while `--big` unauthenticated
  clients each declare a 4 MiB VIDEO frame and send its payload (target:
  peak under 100 MB), read from /proc (VmHWM, reset before the phase where
  the kernel allows, else polled VmRSS);
- a legitimate reference Viewer's time from start to STREAMING with no flood
  (first of all), then while `--silent` connections that never say a word
  are being opened by another process, as an attacker's would be (target:
  under 3 s); the flood comes last so its sockets do not count in the peak
  above, and the peak over the whole run is printed too.

The soft RLIMIT_NOFILE is raised to the hard limit first: 2,000 connections
need 2,000 descriptors here and up to as many in the Primary, which inherits
the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.frames import FrameType, encode_header
from reference.protocol.states import ViewerState

TARGET_STREAMING_S = 3.0
TARGET_PEAK_MB = 100.0
SECRET = "bench"
FOUR_MIB = 4 * 1024 * 1024
TIMELINE: list[tuple[str, float, str, str]] = []  # (viewer, t, state or action, reason)


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_primary(port: int, control: int, cap: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "primary", "--listen", f"127.0.0.1:{port}",
         "--control", f"127.0.0.1:{control}", "--secret", SECRET, "--quiet",
         "--codec-backend", "software", "--max-unauthenticated", str(cap)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", control), timeout=0.2).close()
            return process
        if process.poll() is not None:
            raise RuntimeError(f"the Primary exited with {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the Primary did not start")


def primary_status(control: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{control}/status", timeout=5) as response:
        status: dict[str, Any] = json.loads(response.read())
        return status


class Memory:
    """The Primary's resident set from /proc/PID/status, in MB."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.clear_refs = Path(f"/proc/{pid}/clear_refs")

    def _field(self, name: str) -> float:
        for line in self.status.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{name} not in {self.status}")

    def rss(self) -> float:
        return self._field("VmRSS")

    def reset_peak(self) -> bool:
        """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
        try:
            self.clear_refs.write_text("5")
        except OSError:
            return False
        return True

    def peak(self) -> float:
        return self._field("VmHWM")


async def time_to_streaming(port: int, viewer_id: str, limit: float = 60.0) -> float:
    """Seconds from a fresh reference Viewer's start to its STREAMING; inf if never."""
    reached = asyncio.Event()

    def sink(record: dict[str, Any]) -> None:
        if record.get("event") in ("state", "connection"):
            TIMELINE.append((viewer_id, record["t"], record.get("state") or record.get("action"),
                             record.get("reason", "")))
        if record.get("event") == "state" and record.get("state") == ViewerState.STREAMING.value:
            reached.set()

    viewer = ReferenceViewer(
        ViewerConfig("127.0.0.1", port, SECRET, viewer_id=viewer_id), sink=sink
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(viewer.run())
    try:
        await asyncio.wait_for(reached.wait(), limit)
        elapsed = loop.time() - started
    except TimeoutError:
        elapsed = float("inf")
    viewer.stop()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed


def flooder(port: int, count: int) -> int:
    """Child process: on "go", open `count` silent connections; hold them until stdin closes."""
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError:
            continue
    print(f"opened {len(held)}", flush=True)
    sys.stdin.read()
    for sock in held:
        sock.close()
    return 0


async def under_flood(port: int, count: int) -> tuple[float, int]:
    """A Viewer's time to STREAMING, started as the flood starts; and how many opened."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--flooder", str(port), str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    if (await child.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the flooder did not start")
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    elapsed = await time_to_streaming(port, "under-flood")
    opened = int((await asyncio.wait_for(child.stdout.readline(), 120)).split()[1])
    child.stdin.close()
    await child.wait()
    return elapsed, opened


async def big_frame_sender(port: int) -> None:
    """Declare a 4 MiB VIDEO frame before authenticating, then push its payload."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    chunk = b"\x00" * 65536
    try:
        writer.write(encode_header(FrameType.VIDEO, 0, 1, 0, 0, FOUR_MIB))
        for _ in range(FOUR_MIB // len(chunk)):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def run(args: argparse.Namespace, port: int, control: int, memory: Memory) -> int:
    baseline = await time_to_streaming(port, "baseline")
    rss_before = memory.rss()

    exact = memory.reset_peak()
    samples = [memory.rss()]
    senders = asyncio.gather(*(big_frame_sender(port) for _ in range(args.big)))
    while not senders.done():
        samples.append(memory.rss())
        await asyncio.wait({senders}, timeout=0.02)
    await senders
    peak = memory.peak() if exact else max(samples)
    rss_after = memory.rss()

    # The flood: the legitimate Viewer starts while the silent connections pour in.
    flooded, opened = await under_flood(port, args.silent)
    status = primary_status(control)
    flood_peak = memory.peak() if exact else float("nan")
    final = primary_status(control)

    ok_time = flooded < TARGET_STREAMING_S
    ok_peak = peak < TARGET_PEAK_MB
    print(f"time to STREAMING, no flood (baseline):           {baseline:7.2f} s")
    print(f"time to STREAMING, {opened} silent connections: {flooded:7.2f} s   "
          f"target < {TARGET_STREAMING_S:g} s: {'yes' if ok_time else 'NO'}")
    print(f"  unauthenticated cap {args.max_unauthenticated}: "
          f"{status['unauthenticated_dropped']} dropped, {status['unauthenticated']} open")
    print(f"Primary RSS before the big-frame senders:          {rss_before:7.1f} MB")
    print(f"Primary peak RSS, {args.big} x 4 MiB declared frames:  {peak:7.1f} MB   "
          f"target < {TARGET_PEAK_MB:g} MB: {'yes' if ok_peak else 'NO'}"
          f"   ({'VmHWM' if exact else 'polled VmRSS'})")
    print(f"Primary RSS after them:                            {rss_after:7.1f} MB")
    print(f"Primary peak RSS over the whole run (flood last):  {flood_peak:7.1f} MB")
    print(f"handler errors in the Primary: {final['handler_errors']}")
    if args.verbose:
        for viewer_id, t, what, reason in TIMELINE:
            print(f"  {viewer_id:12} {t:12.3f}  {what:18} {reason}")
    return 0 if ok_time and ok_peak and final["handler_errors"] == 0 else 1


def main() -> int:
    if sys.argv[1:2] == ["--flooder"]:
        return flooder(int(sys.argv[2]), int(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silent", type=int, default=2000)
    parser.add_argument("--big", type=int, default=200)
    parser.add_argument("--max-unauthenticated", type=int, default=256)
    parser.add_argument("--verbose", action="store_true", help="print the Viewers' timelines")
    args = parser.parse_args()
    limit = raise_fd_limit(2 * args.silent + 256)
    if limit < args.silent + 64:
        print(f"RLIMIT_NOFILE is {limit}: too low for {args.silent} connections", file=sys.stderr)
        return 2
    port, control = free_port(), free_port()
    primary = start_primary(port, control, args.max_unauthenticated)
    try:
        return asyncio.run(run(args, port, control, Memory(primary.pid)))
    finally:
        primary.terminate()
        primary.wait(10)


if __name__ == "__main__":
    sys.exit(main())
