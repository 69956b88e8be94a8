"""`--fleet locust --workers 2`: a local Locust master and two workers run the Viewers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from harness.cli import main

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
