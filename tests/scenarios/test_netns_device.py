"""A Viewer on "another machine": a network namespace joined to this one by a veth pair.

The Viewer (the reference one, as a separate program) runs in the namespace with its own
network stack and reaches the harness only over the veth link, at the address the harness
listens on (--listen) and advertises ({host}); its telemetry comes back over the same link
({telemetry_url}). Needs root (CAP_NET_ADMIN) and iproute2; skipped where they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.checks.verdict import Status
from harness.scenarios.loader import ViewerSpec, load_scenario
from harness.scenarios.network import Network
from harness.scenarios.runner import run_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable
NET = f"10.213.{os.getpid() % 250}"
HARNESS, DEVICE = f"{NET}.1", f"{NET}.2"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def device_namespace() -> Iterator[str]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    name = f"lvsdev{os.getpid()}"
    host_end, device_end = f"h{name}"[:15], f"d{name}"[:15]
    if _ip("netns", "add", name).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs CAP_NET_ADMIN)")
    try:
        steps = [
            ("link", "add", host_end, "type", "veth", "peer", "name", device_end),
            ("link", "set", device_end, "netns", name),
            ("addr", "add", f"{HARNESS}/30", "dev", host_end),
            ("link", "set", host_end, "up"),
            ("netns", "exec", name, "ip", "addr", "add", f"{DEVICE}/30", "dev", device_end),
            ("netns", "exec", name, "ip", "link", "set", device_end, "up"),
            ("netns", "exec", name, "ip", "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr.strip()}"
        yield name
    finally:
        _ip("link", "del", host_end)
        _ip("netns", "del", name)


def test_viewer_in_another_network_namespace_is_certified_over_the_link(
    tmp_path: Path, device_namespace: str
) -> None:
    sender = tmp_path / "send.py"  # the device's telemetry, line by line, to tcp://HOST:PORT
    sender.write_text(
        "import socket, sys\n"
        "host, port = sys.argv[1].removeprefix('tcp://').rsplit(':', 1)\n"
        "sock = socket.create_connection((host, int(port)))\n"
        "for line in sys.stdin:\n    sock.sendall(line.encode())\n"
    )
    inside = f"ip netns exec {device_namespace}"
    command = (
        f"sh -c '{inside} {PY} -m harness.cli viewer --connect {{host}}:{{port}} "
        f"--secret {{secret}} --telemetry /dev/stdout --viewer-id v1 --quiet "
        f"| {inside} {PY} {sender} {{telemetry_url}}'"
    )
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    network = Network.from_options(listen=HARNESS)
    result = run_scenario(scenario, tmp_path / "run", seed=3, network=network)
    assert result.verdict == "PASS", result.failures
    records = [json.loads(line) for line in Path(result.trace_path or "").read_text().splitlines()]
    opened = next(
        r for r in records
        if r["kind"] == "conn" and r["tap"] == "viewer_side:v1" and r["event"] == "open"
    )
    assert opened["peer"].startswith(f"{DEVICE}:")  # it came from the other network stack
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS  # its telemetry came over the link
