"""The checkers can fail: each rule-breaking switch, run through a real scenario.

Each case runs a shipped scenario with the reference Primary or Viewer told to
break one rule, and expects FAIL on exactly that rule's IDs among everything
the scenario checks: a checker that passes a broken peer, or blames the wrong
rule, fails here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.checks.verdict import Status
from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario
from reference.protocol.deviations import (
    BREAKS,
    DRIFT_DEVIATIONS,
    PRIMARY_DEVIATIONS,
    Deviation,
)

ROOT = Path(__file__).resolve().parents[2] / "scenarios"

# deviation -> (scenario that exercises it, the IDs that must FAIL there)
CASES: dict[Deviation, tuple[str, set[str]]] = {
    Deviation.NO_SNAPSHOT: ("first-connect", {"SNAP-1"}),
    Deviation.ACTIVE_BEFORE_KEYFRAME: ("reconfigure-mid-stream", {"KEY-1"}),
    Deviation.IGNORE_KEYFRAME_REQUEST: ("frame-loss-recovery", {"KEY-2"}),
    Deviation.MEDIA_BEFORE_ACCEPT: ("first-connect", {"NEG-1"}),
    Deviation.NO_EPOCH_DROP: ("stale-epoch-injection", {"EPOCH-3"}),
    Deviation.NO_KEYFRAME_RETRY: ("frame-loss-recovery", {"WD-2"}),
    Deviation.SELF_DECLARED_STREAMING: ("pause-resume", {"STATE-2", "STATE-5"}),
    Deviation.EVENTS_AS_STATE: ("events-lost-and-late", {"EVT-1"}),
    Deviation.STALE_CONTROL_APPLIED: ("stale-epoch-injection", {"EPOCH-4"}),
}


def test_every_deviation_has_a_case() -> None:
    assert set(CASES) == set(Deviation) - DRIFT_DEVIATIONS  # those: tests/soak/
    for deviation, (_, expected) in CASES.items():
        assert set(BREAKS[deviation]) & expected, deviation


@pytest.mark.parametrize("deviation", list(CASES), ids=[d.value for d in CASES])
def test_switch_fails_exactly_its_requirements(deviation: Deviation, tmp_path: Path) -> None:
    name, expected = CASES[deviation]
    scenario = load_scenario(ROOT / f"{name}.yaml")
    if deviation in PRIMARY_DEVIATIONS:
        scenario.primary = replace(scenario.primary, deviations=[deviation.value])
    else:
        scenario.viewers = [replace(v, deviations=[deviation.value]) for v in scenario.viewers]
    result = run_scenario(scenario, tmp_path, seed=1)
    failed = {v.requirement for v in result.verdicts if v.status is Status.FAIL}
    details = {
        v.requirement: (v.summary, v.evidence[:3])
        for v in result.verdicts
        if v.status is Status.FAIL
    }
    assert failed == expected, (failed, details, result.problems)
    for verdict in result.verdicts:
        if verdict.requirement in expected:
            assert verdict.evidence, f"{verdict.requirement} failed without evidence"
