"""Reproduce and shrink: a FAIL's window becomes a scenario; ddmin cuts it to what fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks.verdict import Status
from harness.scenarios.runner import run_scenario
from harness.soak.nemesis import Step, act
from harness.soak.shrink import ddmin, load_tolerant, scenario_dict, shrink, write_scenario
from tests.soak.conftest import churn_profile, soak


def _steps(*ids: str) -> list[Step]:
    return [Step(i, "drop", float(n), 1.0, (act("note", text=i),)) for n, i in enumerate(ids)]


def test_ddmin_finds_the_one_minimal_subset() -> None:
    steps = _steps("a", "b", "c", "d", "e", "f", "g")
    asked: list[list[str]] = []

    def fails(candidate: list[Step]) -> bool:
        asked.append([s.id for s in candidate])
        ids = {s.id for s in candidate}
        return {"b", "f"} <= ids

    assert [s.id for s in ddmin(steps, fails)] == ["b", "f"]
    assert [] in asked  # the empty schedule is tried first: a FAIL without any fault


def test_ddmin_keeps_an_empty_schedule_when_nothing_is_needed() -> None:
    assert ddmin(_steps("a", "b"), lambda candidate: True) == []


# Three steps: frame delays (noise), the stale-epoch injector, and the reconfiguration that
# gives it a newer epoch to follow. A Viewer that passes stale frames to its decoder
# (`no_epoch_drop`) FAILs EPOCH-3 only with the last two.
CASE = {
    "id": "w0003-EPOCH-3",
    "requirement": "EPOCH-3",
    "summary": "planted",
    "seed": 4,
    "viewers": ["v01"],
    "fallback_viewer": "v01",
    "decoding": [],
    "path": ["toxiproxy", "frame_proxy"],
    "primary_deviations": [],
    "viewer_deviations": ["no_epoch_drop"],
    "steps": [
        Step("n001", "delay", 0.0, 1.5, (act("fault", id="n001", type="delay", direction="p2v",
                                             frame_types=["VIDEO"], delay_ms=20),),
             (act("remove_fault", id="n001"),)).as_dict(),
        Step("n002", "stale_epoch", 0.5, 3.0,
             (act("fault", id="n002", type="stale_epoch", direction="p2v", count=5,
                  inject_after=4),),
             (act("remove_fault", id="n002"),)).as_dict(),
        Step("n003", "reconfigure", 2.0, 1.0,
             (act("reconfigure", width=426, height=240, bitrate=400000),)).as_dict(),
    ],
}


@pytest.mark.timeout(300)
def test_shrink_cuts_the_noise_and_writes_a_runnable_scenario(tmp_path: Path) -> None:
    case_path = tmp_path / "fails" / f"{CASE['id']}.json"
    case_path.parent.mkdir()
    case_path.write_text(json.dumps(CASE))
    out = shrink(case_path, log=lambda line: None)
    assert out == tmp_path / "fails" / "w0003-EPOCH-3.shrunk.yaml"
    text = out.read_text()
    assert text.startswith("lvs: 2\n")
    scenario = load_tolerant(out)
    actions = [s.do for s in scenario.timeline if s.do]
    assert len(actions) <= 3, actions
    assert "reconfigure" in actions and "fault" in actions
    assert scenario.fault_path == ["frame_proxy"]  # Toxiproxy was never needed
    # What `harness run` would do with it: it still FAILs on the same requirement.
    result = run_scenario(scenario, tmp_path / "rerun", scenario.seed or 0)
    assert {v.requirement: v.status for v in result.verdicts}["EPOCH-3"] is Status.FAIL


def test_reference_viewer_passes_the_same_reproduction(tmp_path: Path) -> None:
    """The reproduction fails because of the Viewer, not because of the schedule."""
    steps = [Step.from_dict(s) for s in CASE["steps"]]
    path = tmp_path / "ref.yaml"
    write_scenario(path, scenario_dict({**CASE, "viewer_deviations": []}, steps))
    scenario = load_tolerant(path)
    result = run_scenario(scenario, tmp_path / "run", scenario.seed or 0)
    assert {v.requirement: v.status for v in result.verdicts}["EPOCH-3"] is Status.PASS


def test_a_soak_fail_gets_a_reproduction_scenario(tmp_path: Path) -> None:
    profile = churn_profile(
        viewers=3,
        path=["frame_proxy"],
        viewer_deviations=["no_epoch_drop"],
        nemesis={
            "every": 2.5,
            "start_after": 2,
            "faults": {
                "stale_epoch": {"weight": 1, "duration": [3, 4]},
                "reconfigure": {"weight": 1, "duration": [1, 1]},
            },
        },
        drift={"limits": []},
    )
    result = soak(profile, tmp_path, 1)  # seed 1: a reconfiguration while stale_epoch is on
    assert "EPOCH-3" in result.failed_requirements
    fail = next(f for f in result.fails if f["requirement"] == "EPOCH-3")
    scenario = load_tolerant(Path(fail["reproduction"]))
    assert scenario.expect == {"EPOCH-3": {}}
    assert any(s.do == "reconfigure" for s in scenario.timeline)
    assert (tmp_path / "fails" / f"{fail['id']}.json").exists()
    # The segments around the FAIL are kept for inspection.
    assert result.disk["kept_segments"]
    html = (tmp_path / "soak.html").read_text()
    assert fail["id"] in html and "--shrink" in html


def test_shrink_widens_to_earlier_steps_when_the_window_needs_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search itself, with a predicate for the run: a FAIL that needs a step from before
    its window (here: a reconfiguration long before the encoder restart)."""
    import yaml

    import harness.soak.shrink as shrink_module

    def fails_on(
        requirement: str, scenario_path: Path, workdir: Path, split: Any, network: Any = None
    ) -> bool:
        assert split is None  # no testee in this case: the whole trace is judged
        actions = [s.get("do") for s in yaml.safe_load(scenario_path.read_text())["timeline"]]
        return "reconfigure" in actions and "restart_encoder" in actions

    monkeypatch.setattr(shrink_module, "fails_on", fails_on)
    noise = (act("pause"),), (act("resume"),)
    case = {
        **CASE,
        "id": "w0008-EPOCH-1",
        "requirement": "EPOCH-1",
        "earlier": [
            Step("n001", "reconfigure", 10.0, 2.0, (act("reconfigure", width=640),)).as_dict(),
            Step("n002", "pause", 40.0, 3.0, *noise).as_dict(),
        ],
        "steps": [
            Step("n003", "pause", 70.0, 3.0, *noise).as_dict(),
            Step("n004", "restart_encoder", 95.0, 2.0, (act("restart_encoder"),)).as_dict(),
        ],
    }
    case_path = tmp_path / "w0008-EPOCH-1.json"
    case_path.write_text(json.dumps(case))
    lines: list[str] = []
    out = shrink(case_path, log=lines.append)
    assert any("widening" in line for line in lines)
    data = yaml.safe_load(out.read_text())
    timeline = [(s["at"], s["do"]) for s in data["timeline"] if "do" in s]
    assert [do for _, do in timeline] == ["reconfigure", "restart_encoder"]
    assert timeline[1][0] - timeline[0][0] <= 1.0  # the 85 s between them cut to 1 s
