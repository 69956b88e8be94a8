"""The verdict roll-up: INCONCLUSIVE for cut-short timelines, then one status per ID."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks.verdict import Status
from harness.report.rollup import roll_up, scenario_statuses, scenario_verdict
from harness.report.summary import requirement_matrix

P, F, NO, INC, NA = (
    Status.PASS,
    Status.FAIL,
    Status.NOT_OBSERVED,
    Status.INCONCLUSIVE,
    Status.NOT_APPLICABLE,
)


def result(covers: list[str], statuses: dict[str, Status], problems: list[str]) -> dict[str, Any]:
    return {
        "name": "s",
        "covers": covers,
        "problems": problems,
        "requirements": [
            {"requirement": r, "status": s.value, "summary": "", "evidence": []}
            for r, s in statuses.items()
        ],
    }


def test_a_complete_timeline_keeps_the_checkers_statuses() -> None:
    done = result(["HB-1", "KEY-1"], {"HB-1": P, "KEY-1": F, "WD-1": NO}, [])
    assert scenario_statuses(done) == {"HB-1": P, "KEY-1": F, "WD-1": NO}
    assert scenario_verdict(done) == "FAIL"


def test_a_cut_short_timeline_makes_covered_passes_inconclusive() -> None:
    aborted = result(
        ["HB-1", "KEY-1", "SNAP-1", "WD-1"],
        {"HB-1": P, "KEY-1": F, "SNAP-1": NO, "AUTH-1": P},
        ["line 9: waited 5 s for viewer=v1 state=STREAMING, it never happened"],
    )
    assert scenario_statuses(aborted) == {
        "HB-1": INC,  # passed so far, but the timeline meant to exercise it did not finish
        "KEY-1": F,  # a violation seen is a violation
        "SNAP-1": INC,
        "AUTH-1": P,  # not covered: an incidental observation stands
        "WD-1": INC,  # covered, never judged
    }
    assert scenario_verdict(aborted) == "FAIL"
    without_failure = result(["HB-1"], {"HB-1": P}, ["scenario exceeded its timeout of 5 s"])
    assert scenario_verdict(without_failure) == "ERROR"


def test_a_covered_requirement_not_observed_fails_a_complete_scenario() -> None:
    assert scenario_verdict(result(["HB-1"], {"HB-1": NO}, [])) == "FAIL"
    assert scenario_verdict(result(["HB-1"], {"HB-1": P, "WD-1": NO}, [])) == "PASS"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([P, INC, F, NO], F),
        ([P, INC, NO], INC),
        ([INC], INC),
        ([P, NO], P),
        ([P, P], P),
        ([NO, NO], NO),
        ([], NO),
        ([NA], NA),
        ([NA, NO], NO),
        ([NA, P], P),
    ],
)
def test_roll_up_across_scenarios(statuses: list[Status], expected: Status) -> None:
    assert roll_up(statuses) is expected


def test_the_report_matrix_uses_the_roll_up() -> None:
    scenarios = [
        {
            "name": "a",
            "requirements": [
                {"requirement": "HB-1", "status": "PASS", "summary": "", "evidence": []}
            ],
        },
        {
            "name": "b",
            "requirements": [
                {"requirement": "HB-1", "status": "INCONCLUSIVE", "summary": "", "evidence": []}
            ],
        },
    ]
    matrix = requirement_matrix(scenarios)
    assert matrix["HB-1"]["verdict"] == "INCONCLUSIVE"
    assert [s["scenario"] for s in matrix["HB-1"]["scenarios"]] == ["a", "b"]
    assert matrix["KEY-1"]["verdict"] == "NOT_OBSERVED"
