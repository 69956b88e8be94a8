"""How many header-only Viewers one Locust worker process holds at 1280x720, 30 fps, p99 < 50 ms.

    python benchmarks/fleet_capacity.py [--steps 1,10,25,50,100,150,200,300,400]
        [--seconds 20] [--baseline-seconds 10] [--settle 4] [--keep-going] [--live-encoder]

One reference Primary (`harness primary --replay`, 1280x720 at 2 Mb/s, 30 fps, in its
own process) serves every step. It codes one GOP with libx264 and sends it in a loop
(reference/codecs/replay.py): real H.264 of that size and rate on the wire, without
the encoder's own 25-40 ms a picture and most of a core, which on a 2-core host
measured the encoder instead of the worker (one user: p99 42 ms, and 51 ms for the
in-process baseline, with the host otherwise idle). `--live-encoder` codes every
picture as a soak's Primary does. The fleet is `harness soak --fleet locust --workers 1`'s:
a Locust master and ONE worker running `harness/soak/fleet_locustfile.py`'s `LvsViewer`
(a header-only Viewer on the sans-IO core over gevent sockets), spawned at the soak's
rate (users / 2 per second). The master runs with its web UI on loopback so that one
master and worker serve every step: per step the benchmark starts N users, waits
until the fleet's own figures show all N STREAMING, lets them settle (longer than
Locust's 3 s worker report interval, so the samples a worker reports just after the
reset are steady-state ones), resets Locust's statistics, holds `--seconds`, and reads:

- p50 / p99 / max delivery latency: Locust's statistics, the `LVS frame` row of the
  master's `/stats/requests/csv` (whole milliseconds under 100 ms, as Locust buckets);
- failures: that row's failure count (a picture of a stale epoch) plus the task
  exceptions Locust caught, by message;
- frames/s delivered: the `rendered` counts in the per-Viewer figures the worker ships
  every second (`fleet-telemetry.jsonl`), over the same window;
- worker / master / Primary CPU (% of one core, /proc/PID/stat), the worker's CPU per
  1,000 frames/s delivered, and its wait for a CPU (run-queue time of all its threads,
  /proc/PID/task/*/schedstat);
- /proc/loadavg at the end of the window: the host is shared.

Baseline, in the same run against the same Primary right after each step: as many
reference Viewers with `decode=False` (the engine of the soak's own Viewer population)
in this benchmark's process, latency capture-to-delivery as in viewer_load.py. What the
baseline shows at N is the Primary's and the host's share; what the fleet adds above it
is the Locust worker's. The figure is the largest step before the first one that misses
(p99 >= 50 ms, a failure, a user not STREAMING, or under 95 % of the frames delivered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from harness.cpu_wait import thread_waits  # noqa: E402
from harness.soak.fleet import LOCUSTFILE  # noqa: E402
from harness.toxiproxy.launcher import free_loopback_port  # noqa: E402
from reference.peers.viewer import ReferenceViewer, ViewerConfig  # noqa: E402
from reference.protocol.states import ViewerState  # noqa: E402

TARGET_P99_MS = 50.0
MIN_DELIVERED = 0.95
SECRET = "bench"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# --- what a step measured, and the figure -----------------------------------------------


@dataclass
class Baseline:
    streaming: int
    delivered: float  # share of users * fps * seconds
    p50_ms: float
    p99_ms: float
    cpu_pct: float


@dataclass
class Step:
    users: int
    streaming: int
    fps: int
    frames_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: dict[str, int]
    worker_cpu_pct: float
    worker_wait_pct: float
    master_cpu_pct: float
    primary_cpu_pct: float
    load_before: float  # 1-min load average before the users were spawned
    load: tuple[float, float, float]  # at the end of the window
    baseline: Baseline | None = None

    @property
    def delivered(self) -> float:
        expected = self.users * self.fps
        return self.frames_per_s / expected if expected else 0.0

    @property
    def worker_cpu_per_kfps(self) -> float:
        """The worker's CPU (% of a core) per 1,000 frames a second delivered."""
        return 1000 * self.worker_cpu_pct / self.frames_per_s if self.frames_per_s else math.nan

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def meets(step: Step) -> bool:
    return (step.p99_ms < TARGET_P99_MS and step.failed == 0 and step.streaming == step.users
            and step.delivered >= MIN_DELIVERED)


def capacity(steps: Sequence[Step]) -> int:
    """The largest step before the first that misses the target (0 if the first misses)."""
    best = 0
    for step in steps:
        if not meets(step):
            break
        best = step.users
    return best


# --- the processes ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def run_queue_seconds(pid: int) -> float:
    return sum(thread_waits(pid).values()) / 1e9


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


class Meter:
    """CPU and run-queue time of some processes between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.began = 0.0
        self.cpu: dict[str, float] = {}
        self.wait: dict[str, float] = {}

    def start(self) -> None:
        self.began = time.monotonic()
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.wait = {name: run_queue_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        """Per process: CPU % of one core, and % of the window its threads waited for a CPU."""
        wall = max(time.monotonic() - self.began, 1e-9)
        cpu = {n: 100 * (cpu_seconds(p) - self.cpu[n]) / wall for n, p in self.pids.items()}
        wait = {n: 100 * (run_queue_seconds(p) - self.wait[n]) / wall
                for n, p in self.pids.items()}
        return cpu, wait


def wait_until(what: str, ready: Callable[[], bool], within: float,
               alive: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + within
    while not ready():
        alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within:g} s")
        time.sleep(0.2)  # polling another process's state


def start_primary(port: int, fps: int, live: bool) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "primary", "--listen", f"127.0.0.1:{port}",
         "--secret", SECRET, "--width", "1280", "--height", "720", "--fps", str(fps),
         "--bitrate", "2000000", "--quiet", "--codec-backend", "software",
         *(() if live else ("--replay",))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )

    def listening() -> bool:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        return False

    wait_until("the Primary listening", listening, 30)
    return process


@dataclass
class FleetFigures:
    """The per-Viewer figures the worker ships (one line per second in the telemetry file)."""

    path: Path
    offset: int = 0
    pending: str = ""
    seen: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, users, streaming,
    # rendered since the previous figures

    def read(self) -> None:
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
            self.offset = handle.tell()
        self.pending += chunk
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            # The records lines (every frame's telemetry) are most of the file; only the
            # figures are read.
            if not line.startswith('["figures"'):
                continue
            payload = json.loads(line)[1]
            figures = payload["figures"].values()
            self.seen.append((float(payload["t"]), len(figures),
                              sum(f["state"] == ViewerState.STREAMING.value for f in figures),
                              sum(int(f["rendered"]) for f in figures)))

    def streaming(self) -> int:
        self.read()
        return self.seen[-1][2] if self.seen else 0

    def rate(self, start: float, end: float) -> float:
        """Frames rendered per second between two instants (the figures inside them)."""
        self.read()
        return rendered_rate([(t, rendered) for t, _, _, rendered in self.seen], start, end)

    def forget(self) -> None:
        """Empty the file between steps (the master appends, so it writes on at 0)."""
        os.truncate(self.path, 0)
        self.offset, self.pending, self.seen = 0, "", []


def rendered_rate(figures: Sequence[tuple[float, int]], start: float, end: float) -> float:
    """Frames per second from (t, rendered since the previous figures) within (start, end]."""
    inside = [(t, n) for t, n in figures if start < t <= end]
    before = [t for t, _ in figures if t <= start]
    if not inside or not before:
        return float("nan")
    return sum(n for _, n in inside) / (inside[-1][0] - before[-1])


class LocustFleet:
    """A Locust master (web UI on loopback) and one worker, driven over the master's HTTP API."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        self.web = f"http://127.0.0.1:{free_loopback_port()}"
        master_port = free_loopback_port()
        self.figures = FleetFigures(directory / "fleet-telemetry.jsonl")
        self.figures.path.write_text("")
        self.log_path = directory / "fleet.log"
        env = {**os.environ, "LVS_HOST": "127.0.0.1", "LVS_PORT": str(primary_port),
               "LVS_SECRET": SECRET, "LVS_SEED": "1", "LVS_FLEET_OUT": str(self.figures.path),
               "LVS_FIGURES_S": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
        log = self.log_path.open("ab")
        web_port = urllib.parse.urlsplit(self.web).port
        self.master = subprocess.Popen(
            [*locust, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
             str(master_port), "--web-host", "127.0.0.1", "--web-port", str(web_port)],
            env=env, stdout=log, stderr=log, cwd=ROOT)
        self.worker = subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)],
            env=env, stdout=log, stderr=log, cwd=ROOT)
        wait_until("the Locust worker connected",
                   lambda: self._json("/stats/requests").get("worker_count") == 1, 90, self.alive)

    def alive(self) -> None:
        for name, process in (("master", self.master), ("worker", self.worker)):
            if process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Locust {name} exited with {process.returncode}:\n{tail}")

    def _get(self, path: str) -> str:
        with urllib.request.urlopen(self.web + path, timeout=10) as response:
            return str(response.read().decode())

    def _json(self, path: str) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self._get(path)))
        return {}

    def _post(self, path: str, form: dict[str, str] | None = None) -> None:
        data = urllib.parse.urlencode(form or {}).encode()
        with urllib.request.urlopen(self.web + path, data=data, timeout=10) as response:
            response.read()

    def swarm(self, users: int) -> None:
        self._post("/swarm", {"user_count": str(users), "spawn_rate": f"{max(1.0, users / 2):g}"})

    def reset(self) -> None:
        self._post("/stats/reset")

    def stop_users(self) -> None:
        self._post("/stop")
        wait_until("the Locust users stopped",
                   lambda: self._json("/stats/requests").get("user_count") == 0, 30, self.alive)

    def frame_stats(self) -> tuple[dict[str, str], dict[str, int]]:
        """The `LVS frame` row of Locust's request statistics, and failures by message."""
        rows = csv.DictReader(io.StringIO(self._get("/stats/requests/csv")))
        row = next((r for r in rows if r["Type"] == "LVS" and r["Name"] == "frame"), {})
        failures: dict[str, int] = {}
        for failure in csv.DictReader(io.StringIO(self._get("/stats/failures/csv"))):
            failures[failure["Error"]] = failures.get(failure["Error"], 0) + int(
                failure["Occurrences"])
        for exc in self._json("/exceptions").get("exceptions", []):
            failures[f"exception: {exc['msg']}"] = int(exc["count"])
        return row, failures

    def close(self) -> None:
        for process in (self.worker, self.master):
            if process.poll() is None:
                process.terminate()
        for process in (self.worker, self.master):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# --- one step --------------------------------------------------------------------------------


def fleet_step(fleet: LocustFleet, primary: subprocess.Popen[bytes], users: int, fps: int,
               seconds: float, settle: float) -> Step:
    def alive() -> None:
        fleet.alive()
        if primary.poll() is not None:
            raise RuntimeError(f"the Primary exited with {primary.returncode}")

    fleet.figures.forget()
    load_before = loadavg()[0]
    fleet.swarm(users)
    wait_until(f"{users} Locust users STREAMING", lambda: fleet.figures.streaming() >= users,
               30 + users / 5, alive)
    time.sleep(settle)  # past one worker report interval, all users streaming
    meter = Meter({"worker": fleet.worker.pid, "master": fleet.master.pid,
                   "primary": primary.pid})
    fleet.reset()
    start = time.monotonic()
    meter.start()
    time.sleep(seconds)  # the measurement window
    row, failures = fleet.frame_stats()
    end = time.monotonic()
    cpu, wait = meter.stop()
    load = loadavg()
    streaming = fleet.figures.streaming()
    fleet.figures.read()
    time.sleep(1.5)  # the figures of the window's last second, shipped once a second
    frames_per_s = fleet.figures.rate(start, end)
    fleet.stop_users()
    alive()

    def ms(column: str) -> float:
        value = row.get(column, "")
        return float(value) if value not in ("", "N/A") else float("nan")

    return Step(users=users, streaming=streaming, fps=fps, frames_per_s=frames_per_s,
                p50_ms=ms("50%"), p99_ms=ms("99%"), max_ms=ms("100%"), failures=failures,
                worker_cpu_pct=cpu["worker"], worker_wait_pct=wait["worker"],
                master_cpu_pct=cpu["master"], primary_cpu_pct=cpu["primary"],
                load_before=load_before, load=load)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def baseline_step(port: int, users: int, fps: int, seconds: float) -> Baseline:
    """The same number of reference header-only Viewers, in this process."""
    viewers = [ReferenceViewer(ViewerConfig("127.0.0.1", port, SECRET, decode=False,
                                            viewer_id=f"b{i}", seed=i)) for i in range(users)]
    tasks = [asyncio.create_task(v.run()) for v in viewers]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30 + users / 5
    while not all(v.state is ViewerState.STREAMING for v in viewers):
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.1)  # benchmark warm-up, not a test synchronisation
    await asyncio.sleep(1.0)  # past the join keyframe
    for v in viewers:
        v.stats.latencies.clear()
    cpu = cpu_seconds(os.getpid())
    await asyncio.sleep(seconds)  # the measurement window
    cpu = cpu_seconds(os.getpid()) - cpu
    samples = [lat for v in viewers for lat in v.stats.latencies]
    streaming = sum(v.state is ViewerState.STREAMING for v in viewers)
    for v in viewers:
        v.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    nan = float("nan")
    return Baseline(
        streaming=streaming, delivered=len(samples) / (users * seconds * fps),
        p50_ms=statistics.median(samples) * 1000 if samples else nan,
        p99_ms=percentile(samples, 0.99) * 1000 if samples else nan,
        cpu_pct=100 * cpu / seconds)


# --- the table --------------------------------------------------------------------------------


def table(steps: Sequence[Step], fps: int) -> Table:
    out = Table(title=f"Header-only Locust Viewers on ONE worker process, one 1280x720@{fps} "
                      "Primary (this host); baseline: as many reference Viewers in one process")
    for column in ("users", "streaming", "frames/s (of users x fps)", "p50 ms", "p99 ms",
                   "max ms", "failures", "worker CPU %", "worker CPU % per 1,000 frames/s",
                   "worker CPU wait %", "master CPU %",
                   "Primary CPU %", "load 1 min before -> end (5 min)", "baseline p50 / p99 ms",
                   "baseline delivered", "baseline CPU %", "p99 < 50 ms"):
        out.add_column(column, justify="right")
    for step in steps:
        b = step.baseline
        out.add_row(
            str(step.users), str(step.streaming),
            f"{step.frames_per_s:.0f} ({step.delivered:.1%})",
            f"{step.p50_ms:.0f}", f"{step.p99_ms:.0f}", f"{step.max_ms:.0f}",
            ", ".join(f"{n} {m}" for m, n in step.failures.items()) or "0",
            f"{step.worker_cpu_pct:.0f}", f"{step.worker_cpu_per_kfps:.1f}",
            f"{step.worker_wait_pct:.0f}",
            f"{step.master_cpu_pct:.0f}", f"{step.primary_cpu_pct:.0f}",
            f"{step.load_before:.1f} -> {step.load[0]:.1f} ({step.load[1]:.1f})",
            f"{b.p50_ms:.1f} / {b.p99_ms:.1f}" if b else "-",
            f"{b.delivered:.1%}" if b else "-", f"{b.cpu_pct:.0f}" if b else "-",
            "yes" if meets(step) else "no")
    return out


def steps_from(text: str) -> Iterator[int]:
    return (int(n) for n in text.split(","))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1,10,25,50,100,150,200,300,400")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=4.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--live-encoder", action="store_true",
                        help="code every picture (libx264) instead of replaying one GOP")
    parser.add_argument("--keep-going", action="store_true",
                        help="run every step, even past the first that misses (the figure stays "
                             "the largest step before it)")
    args = parser.parse_args()
    console = Console(width=240)
    console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.gmtime())}, "
                  f"{os.cpu_count()} CPUs, load {' '.join(map(str, loadavg()))} at start")
    steps: list[Step] = []
    port = free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="lvs-fleet-capacity-") as tmp:
        primary = start_primary(port, args.fps, args.live_encoder)
        fleet: LocustFleet | None = None
        try:
            fleet = LocustFleet(Path(tmp), port)
            for users in steps_from(args.steps):
                step = fleet_step(fleet, primary, users, args.fps, args.seconds, args.settle)
                step.baseline = asyncio.run(
                    baseline_step(port, users, args.fps, args.baseline_seconds))
                steps.append(step)
                b = step.baseline
                console.print(
                    f"{users} users: p99 {step.p99_ms:.0f} ms, {step.delivered:.1%} delivered, "
                    f"failures {step.failed}, worker CPU {step.worker_cpu_pct:.0f} %, load "
                    f"{step.load[0]:.1f}; baseline p99 {b.p99_ms:.1f} ms")
                if not meets(step) and not args.keep_going:
                    break
        finally:
            if fleet is not None:
                fleet.close()
            primary.terminate()
            primary.wait(10)
    console.print(table(steps, args.fps))
    console.print(f"largest step meeting the target on one Locust worker: {capacity(steps)} "
                  "header-only Viewers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
