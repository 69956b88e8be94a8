"""`--fleet locust`: the Viewer population on Locust's distributed mode, master plus workers.

Where one host cannot hold the population, the Viewers run as Locust users
(`fleet_locustfile.py`: header-only Viewers on the sans-IO core over gevent
sockets) rather than on a home-made load engine. `harness soak --fleet locust
--workers N` starts a local master and N local workers; the master appends the
users' telemetry and figures to a JSON Lines file that this module tails into
the soak's trace and sampler. With `--fleet-bind ADDRESS` the master and the fault
path's entry listen on that address, and workers on other hosts join with the same
locustfile and nothing but `--worker --master-host ADDRESS --master-port PORT`
(`remote_worker_command()`; the master forwards the rest, docs/soak.md).

The fleet's users connect straight to the fault path's entry (no per-Viewer tap:
their telemetry is judged, and the Primary's side of every connection); the
nemesis's Viewer steps (kills, storms, late joins) do not apply to them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.toxiproxy.launcher import free_loopback_port

ANY_ADDRESS = ("0.0.0.0", "::", "")

LOCUSTFILE = Path(__file__).with_name("fleet_locustfile.py")
POLL_S = 0.05  # tailing a file another process writes


class FleetError(RuntimeError):
    pass


class Fleet:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        bind: str | None = None,
        master_port: int | None = None,
        secret: str,
        seed: int,
        users: int,
        workers: int,
        duration: float,
        remote_workers: int = 0,
        directory: Path,
        figures_interval: float,
        records: Callable[[dict[str, Any]], None],
        figures: Callable[..., None],
    ) -> None:
        self.users, self.workers, self.duration = users, workers, duration
        self.remote_workers = remote_workers  # joined from other hosts; the master waits
        self.records, self.figures = records, figures
        self.figures_interval = figures_interval
        self.out = directory / "fleet-telemetry.jsonl"
        self.out.write_text("")
        self.log = directory / "fleet.log"
        # `bind`: where the master (and the entry, `port`) listen for workers on other
        # hosts; local workers reach it there, or on `host` when it is every address.
        self.bind = bind or host
        self.master_host = host if self.bind in ANY_ADDRESS else self.bind
        self.master_port = master_port or free_loopback_port()
        self.entry_port = port
        # The users' options, given to the master, which forwards them to every worker.
        self.options = ("--lvs-port", str(port), "--lvs-secret", secret, "--lvs-seed",
                        str(seed), "--lvs-figures-s", f"{figures_interval:g}")
        self.env = {
            **os.environ,
            "LVS_HOST": self.master_host,
            "LVS_FLEET_OUT": str(self.out),
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                           os.environ.get("PYTHONPATH", "")]),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None

    def _locust(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING",
                *args]

    def remote_worker_command(self) -> str:
        """What starts one more worker on another host (in a checkout of this project)."""
        host = "<this host's address>" if self.bind in ANY_ADDRESS else self.bind
        return (f"python -m locust -f harness/soak/fleet_locustfile.py --worker "
                f"--master-host {host} --master-port {self.master_port}")

    def start(self) -> None:
        log = self.log.open("ab")
        log.write(f"LVS entry {self.bind}:{self.entry_port}, master {self.bind}:"
                  f"{self.master_port}; another worker: {self.remote_worker_command()}\n"
                  .encode())
        log.flush()
        rate = max(1.0, self.users / 2)
        self.processes["fleet.master"] = subprocess.Popen(
            self._locust("--master", "--headless", "--master-bind-host", self.bind,
                         "--master-bind-port", str(self.master_port),
                         "--expect-workers", str(self.workers + self.remote_workers),
                         "-u", str(self.users),
                         "-r", f"{rate:g}", "--run-time", f"{int(self.duration) + 60}s",
                         "--only-summary", *self.options),
            env=self.env, stdout=log, stderr=log,
        )
        for i in range(1, self.workers + 1):
            self.processes[f"fleet.worker{i}"] = subprocess.Popen(
                self._locust("--worker", "--master-host", self.master_host,
                             "--master-port", str(self.master_port)),
                env=self.env, stdout=log, stderr=log,
            )
        self._tail = threading.Thread(target=self._follow, name="fleet telemetry", daemon=True)
        self._tail.start()

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}

    def _follow(self) -> None:
        with self.out.open(encoding="utf-8") as handle:
            pending = ""
            while True:
                chunk = handle.read()
                if not chunk:
                    if self._stop.is_set():
                        return
                    time.sleep(POLL_S)
                    continue
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    kind, payload = json.loads(line)
                    if kind == "records":
                        for record in payload["records"]:
                            self.records(record)
                    elif kind == "figures":
                        self.figures(float(payload["t"]), payload["figures"],
                                     interval=self.figures_interval)

    def failed(self) -> str | None:
        master = self.processes.get("fleet.master")
        if master is not None and master.poll() is not None:
            return f"the Locust master exited with {master.returncode} (see {self.log})"
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        time.sleep(POLL_S * 2)  # the master's last lines, written as it stopped
        self._stop.set()
        if self._tail is not None:
            self._tail.join(5)
