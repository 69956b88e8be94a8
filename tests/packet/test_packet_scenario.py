"""End to end: the 5 % loss scenario passes, and its packet.pcap holds real TCP retransmissions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from packet_support import needs_tun

from harness.packet.capture import retransmitted_segments
from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
pytestmark = needs_tun


def _tshark_count(pcap: Path, display_filter: str) -> int:
    done = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    )
    return len(done.stdout.split())


@pytest.fixture(scope="module")
def loss_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("packet-loss-5")
    result = run_scenario(load_scenario(SCENARIOS / "packet-loss-5.yaml"), directory, seed=1)
    assert result.verdict == "PASS", result.failures
    assert result.fault_backends["packet"] == "userspace"
    return directory


def test_the_hop_counts_retransmissions(loss_run: Path) -> None:
    assert retransmitted_segments(str(loss_run / "packet.pcap")) > 0
    notes = [json.loads(line) for line in (loss_run / "trace.jsonl").read_text().splitlines()]
    assert any("retransmitted TCP segment" in r.get("text", "") for r in notes)
    faults = [r for r in notes if r["kind"] == "fault" and r.get("source") == "packet"]
    assert {r["direction"] for r in faults} == {"upstream", "downstream"}


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark not installed (apt-get install tshark)"
)
def test_tshark_finds_the_retransmissions(loss_run: Path) -> None:
    """tshark's own analysis: tcp.analysis.retransmission finds some, and its three kinds
    of resent segment together are exactly what the hop counted."""
    pcap = loss_run / "packet.pcap"
    assert _tshark_count(pcap, "tcp.analysis.retransmission") > 0
    union = (
        "tcp.analysis.retransmission || tcp.analysis.fast_retransmission"
        " || tcp.analysis.out_of_order || tcp.analysis.spurious_retransmission"
    )
    assert _tshark_count(pcap, union) == retransmitted_segments(str(pcap))
