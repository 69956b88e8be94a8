"""Certifying peers that are not ours: external commands driven through a scenario.

The "third-party" peers here are the reference ones run as separate programs
(`harness viewer`, `harness primary`), which is exactly what a certification
user does with their own binaries: the harness sees only their wire and, for a
Viewer, the telemetry file it writes.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from harness.checks.verdict import Status
from harness.scenarios.loader import PrimarySpec, ViewerSpec, load_scenario
from harness.scenarios.runner import run_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable


def test_external_viewer_is_certified_from_its_wire_and_telemetry(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = (
        f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        f"--telemetry {{telemetry}} --viewer-id v1 --quiet"
    )
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS  # decided from the external telemetry
    assert (tmp_path / "telemetry-v1.jsonl").stat().st_size > 0


def test_external_viewer_without_telemetry_leaves_telemetry_rules_undecided(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} --quiet"
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    scenario.timeline = [
        replace(step, wait={"tap": "viewer_side", "message": "STREAM_ACCEPTED"})
        if step.wait
        else step
        for step in scenario.timeline
    ]
    result = run_scenario(scenario, tmp_path, seed=3)
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["SNAP-1"] is Status.PASS  # wire rules still decided
    assert statuses["EPOCH-3"] is Status.NOT_OBSERVED  # no telemetry, no verdict
    assert statuses["STATE-3"] is Status.NOT_OBSERVED


EXTERNAL_PRIMARY = PrimarySpec(
    kind="external",
    command=f"{PY} -m harness.cli primary --listen {{host}}:{{port}} --secret {{secret}} "
    "--width 320 --height 180 --quiet",
)


def test_external_primary_alone_cannot_prove_its_snapshot_true(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.primary = EXTERNAL_PRIMARY
    result = run_scenario(scenario, tmp_path, seed=3)
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert Status.FAIL not in statuses.values(), result.failures
    assert statuses["SNAP-1"] is Status.PASS
    # No Primary records and no other Viewer: nothing independent to compare with.
    assert statuses["SNAP-2"] is Status.NOT_OBSERVED


def test_external_primary_snapshot_checked_against_its_other_viewers(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "late-join-mid-stream.yaml")
    scenario.primary = EXTERNAL_PRIMARY
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
