"""Soaking testees on other machines (docs/soak.md, "Devices"): certify's --listen,
--advertise, --telemetry-port and --primary-address. A second loopback address stands for
the network: the external Viewer is told to connect to 127.0.0.7, and the Primary is one
the test started by hand, which the harness only connects to."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.certify.reference_testees import reference_commands
from harness.scenarios.network import Network
from harness.soak.report import write_reports
from harness.soak.run import SECRET, SoakRun
from harness.soak.testees import SoakTestees
from tests.scenarios.suite_runs import env
from tests.soak.conftest import churn_profile
from tests.soak.test_external import EXTERNAL

DEVICE_HOST = "127.0.0.7"  # every 127/8 address is this machine's loopback
# test_external's profile, with one population Viewer beside the external one (so that
# kills draw it often) and restarts of the Primary among the kinds (to be left out).
PROFILE: dict[str, Any] = {
    **EXTERNAL,
    "viewers": 1,
    "nemesis": {"every": 2, "start_after": 2, "faults": {
        "kill_viewer": {"weight": 2, "duration": [1, 2]},
        "drop": {"weight": 1, "duration": [1, 2]},
        "restart_primary": {"weight": 1, "duration": [0.5, 1]}}},
    "drift": {"warmup": 5, "min_samples": 3,
              "limits": [{"metric": "harness.rss_mb", "max_per_h": 10_000}]},
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def device_primary() -> Iterator[tuple[str, str]]:
    """The reference Primary started by hand, as a phone's would be: (address, control)."""
    port, control = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "primary", "--listen", f"127.0.0.1:{port}",
         "--secret", SECRET, "--control", f"127.0.0.1:{control}", "--quiet"],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{control}"
    finally:
        process.terminate()
        process.wait(10)


def device_testees(address: str, control: str) -> SoakTestees:
    return SoakTestees(primary_address=address, primary_control=control,
                       viewer_command=reference_commands()["viewer"], external_viewers=1)


def seed_killing_x01(testees: SoakTestees, network: Network, tmp_path: Path) -> int:
    """The first seed whose schedule kills the external Viewer (and so rejoins it)."""
    for seed in range(1, 50):
        soak = SoakRun(churn_profile(**PROFILE), tmp_path / f"probe{seed}", seed,
                       testees=testees, network=network)
        if any(s.kind == "kill_viewer" and "x01" in str(s.begin) for s in soak.schedule.steps):
            return seed
    raise AssertionError("no seed below 50 kills x01")


@pytest.mark.timeout(180)
def test_a_device_primary_and_a_viewer_on_another_address_are_soaked(
    tmp_path: Path, device_primary: tuple[str, str]
) -> None:
    address, control = device_primary
    listen_port, telemetry_port = free_port(DEVICE_HOST), free_port(DEVICE_HOST)
    network = Network.from_options(f"{DEVICE_HOST}:{listen_port}", DEVICE_HOST, address,
                                   telemetry_port)
    testees = device_testees(address, control)
    seed = seed_killing_x01(testees, network, tmp_path)
    directory = tmp_path / "run"
    directory.mkdir()
    soak = SoakRun(churn_profile(**PROFILE), directory, seed, testees=testees, network=network)
    # The harness cannot restart a Primary it did not start: never drawn, and said why.
    assert "restart_primary" not in {s.kind for s in soak.schedule.steps}
    assert "started by hand" in soak.schedule.left_out["restart_primary"]
    result = asyncio.run(soak.soak())
    write_reports(result)
    assert result.problems == [] and result.verdict == "PASS", (
        result.problems, result.fails, result.harness_faults)
    assert result.testees["judged"] == "the external Primary and external Viewer x01"
    # Every incarnation of the Viewer was pointed at the same advertised address and port.
    commands = {name: p["command"] for name, p in result.testees["processes"].items()}
    assert set(commands) >= {"viewer x01", "viewer x01r2"}, commands
    assert all(f"--connect {DEVICE_HOST}:{listen_port} " in c for c in commands.values())
    assert "primary" not in commands  # nothing was run for the Primary
    # The device's process is not here: no primary.* limit, the harness's own judged.
    metrics = {d.limit.metric for d in result.drift}
    assert not any(m.startswith("primary.") for m in metrics), metrics
    # A reproduction would be run against the same addresses.
    assert result.reproduce_testees["network"] == network.as_options()
    assert Network.from_options(**network.as_options()) == network

