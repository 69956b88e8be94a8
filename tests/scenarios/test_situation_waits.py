"""Situation waits: a scenario whose situation never arose is NOT_APPLICABLE to a testee.

`bandwidth-starvation` stalls a Viewer only when the Primary's frames are larger than
the starved link carries, which the spec leaves free; its wait for RECOVERING says so
(`situation:`). With an external peer that never produces the situation, the
scenario ends NOT_APPLICABLE with the reason (a FAIL judged until then stands); with
reference peers only, the missing situation is a problem of the run, as any wait.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from harness.checks.verdict import Evidence, Status, failed, passed
from harness.report.rollup import (
    SCENARIO_FAIL,
    SCENARIO_NOT_APPLICABLE,
    scenario_statuses,
    scenario_verdict,
)
from harness.scenarios.loader import Scenario, Step, ViewerSpec, load_scenario
from harness.scenarios.runner import ScenarioResult, run_scenario

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable
NEVER = "the Viewer stalled (this test's Viewer never does)"


def _never_stalling(scenario: Scenario) -> Scenario:
    """first-connect, then a situation wait for a RECOVERING that nothing causes."""
    wait = Step(line=99, wait={"viewer": "v1", "state": "RECOVERING", "situation": NEVER},
                within=1.5)
    return replace(scenario, timeline=[*scenario.timeline, wait, Step(line=100, hold=0.5)])


def test_a_situation_that_never_arose_with_a_testee_is_not_applicable(tmp_path: Path) -> None:
    scenario = _never_stalling(load_scenario(ROOT / "first-connect.yaml"))
    command = (
        f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        f"--telemetry {{telemetry}} --viewer-id v1 --quiet"
    )
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.not_applicable is not None, result.problems
    assert result.not_applicable.startswith(f"the situation did not arise: {NEVER}; line 99:")
    assert not result.problems and not result.failures
    assert result.verdict == SCENARIO_NOT_APPLICABLE
    report = result.as_dict()
    assert scenario_verdict(report) == SCENARIO_NOT_APPLICABLE
    statuses = scenario_statuses(report)
    assert {statuses[r] for r in scenario.covers} == {Status.NOT_APPLICABLE}
    judged = {v.requirement: v.status for v in result.verdicts}
    assert statuses["KEY-1"] is judged["KEY-1"]  # not covered: its verdict stands


def test_a_situation_that_never_arose_with_reference_peers_is_a_problem(tmp_path: Path) -> None:
    scenario = _never_stalling(load_scenario(ROOT / "first-connect.yaml"))
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.not_applicable is None
    (problem,) = result.problems
    assert f"the situation did not arise: {NEVER}" in problem
    assert "with reference peers only" in problem
    assert result.verdict == SCENARIO_FAIL


def test_a_fail_judged_before_the_missing_situation_stands() -> None:
    result = ScenarioResult("s", "s.yaml", ["WD-1"], 1, not_applicable="the situation ...")
    result.verdicts = [
        failed("HB-1", "1 violation(s)", [Evidence(1.0, "gap", "v1")]),
        passed("WD-1", "1 checked", []),
    ]
    assert result.verdict == SCENARIO_FAIL
    assert result.failures == ["HB-1 FAIL: 1 violation(s)"]
    report = result.as_dict()
    assert scenario_verdict(report) == SCENARIO_FAIL
    statuses = scenario_statuses(report)
    assert statuses == {"HB-1": Status.FAIL, "WD-1": Status.NOT_APPLICABLE}


def test_bandwidth_starvation_waits_for_its_stall_as_a_situation() -> None:
    scenario = load_scenario(ROOT / "bandwidth-starvation.yaml")
    situations = [s.wait for s in scenario.timeline if s.wait and "situation" in s.wait]
    assert [w["state"] for w in situations] == ["RECOVERING"]
