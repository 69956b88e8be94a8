"""`--fleet locust`: a Locust master and its workers run the Viewers, here and on another host."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.packet.namespace import VethNamespace
from harness.packet.tun import TunError

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="Locust is not installed (dev extra)"
)

PROFILE = """
duration: 20
viewers: 6
decoding: 0
window: 5
sample_interval: 1
path: [frame_proxy]
nemesis:
  every: 5
  start_after: 3
  faults:
    drop: {weight: 1, duration: [1, 2]}
    reconfigure: {weight: 1, duration: [1, 1]}
    kill_viewer: {weight: 1, duration: [1, 1]}
drift:
  warmup: 5
  limits: [{metric: fleet.worker1.rss_mb, max_per_h: 5000}]
"""


def test_locust_fleet_soak_passes_on_the_reference_primary(tmp_path: Path) -> None:
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    argv = ["soak", "--profile", str(profile), "--seed", "2", "--fleet", "locust",
            "--workers", "2", "--report-dir", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    assert data["verdict"] == "PASS"
    # Viewer steps do not apply to Locust users: only stream and injector steps were drawn.
    assert {s["kind"] for s in data["schedule"]["steps"]} <= {"drop", "reconfigure"}
    viewers = data["figures"]["viewers"]
    assert len(viewers) == 6 and all(v.startswith("f") for v in viewers)
    assert {v["state"] for v in viewers.values()} == {"STREAMING"}
    series = data["figures"]["series"]
    assert {"fleet.master.rss_mb", "fleet.worker1.rss_mb", "fleet.worker2.rss_mb"} <= set(series)
    assert series["stream.p99_ms"]["points"]
    statuses = {v["requirement"]: v["status"] for v in data["requirements"]}
    assert statuses["EPOCH-1"] == "PASS" and statuses["WD-1"] == "PASS"
    # Locust's own statistics saw the frames (the LVS request type).
    assert "LVS" in (tmp_path / "run" / "fleet.log").read_text()


CLOCK_CHECK = """
import time
from harness.soak.fleet_locustfile import MasterClock
other = MasterClock()  # a worker on another host: its clock is 990 s behind the master's
other.heard(1000.0, 10.0)
other.heard(2000.0, 10.0)  # fixed by the first message: records keep their spacing
assert other.offset == 990.0 and other.known.is_set()
assert abs(other() - (time.monotonic() + 990.0)) < 0.01
same = MasterClock()  # on the soak host: the same clock, a delivery delay apart
same.heard(10.3, 10.0)
assert same.offset == 0.0
print("ok")
"""


def test_a_worker_on_another_clock_stamps_on_the_masters() -> None:
    # In a child: importing Locust patches the process it runs in for gevent.
    done = subprocess.run([sys.executable, "-c", CLOCK_CHECK], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.fixture
def other_host() -> Iterator[VethNamespace]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    try:
        with VethNamespace() as namespace:
            yield namespace
    except TunError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_worker_on_another_host_joins_with_only_the_masters_address(
    tmp_path: Path, other_host: VethNamespace
) -> None:
    """A Locust worker on "another host": a network namespace joined to this one by a veth
    pair, started with nothing but the master's address, as docs/soak.md tells a user to
    start one on another machine (the entry port, the secret and the seed come from the
    master). Needs root (CAP_NET_ADMIN) and iproute2; skipped without."""
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    master_port = free_port(other_host.outside)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp_path / "remote-worker.log").open("wb")
    remote = subprocess.Popen(
        other_host.exec([sys.executable, "-m", "locust", "-f",
                         str(ROOT / "harness/soak/fleet_locustfile.py"), "--worker",
                         "--master-host", other_host.outside, "--master-port", str(master_port)]),
        env=env, stdout=log, stderr=log, cwd=tmp_path,
    )
    try:
        argv = ["soak", "--profile", str(profile), "--seed", "3", "--fleet", "locust",
                "--workers", "1", "--fleet-remote-workers", "1",
                "--fleet-bind", other_host.outside, "--fleet-master-port", str(master_port),
                "--report-dir", str(tmp_path / "run"), "--quiet"]
        code = main(argv)
    finally:
        remote.terminate()
        try:
            remote.wait(15)
        except subprocess.TimeoutExpired:
            remote.kill()
            remote.wait(5)
        log.close()
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    worker_log = (tmp_path / "remote-worker.log").read_text(errors="replace")
    assert code == 0, (data["verdict"], data["problems"], worker_log[-2000:])
    assert data["verdict"] == "PASS"
    viewers = data["figures"]["viewers"]
    assert len(viewers) == 6 and {v["state"] for v in viewers.values()} == {"STREAMING"}
    # Both workers ran users: f<worker index>-<n>, and the master numbers its workers.
    assert len({vid.split("-")[0] for vid in viewers}) == 2, sorted(viewers)
    assert f"--master-host {other_host.outside} --master-port {master_port}" in (
        tmp_path / "run" / "fleet.log").read_text()
