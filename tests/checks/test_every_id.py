"""Every catalogue ID has a monitor; each PASSes its conforming trace and FAILs its twin.

The traces are hand-written (tests/checks/cases): the smallest situation in which
the rule applies, once conforming and once broken in exactly one place. A
monitor that cannot FAIL, or that FAILs a correct peer, is caught here.
"""

from __future__ import annotations

import pytest

from harness.checks.engine import Engine
from harness.checks.monitor import MONITORS
from harness.checks.verdict import Status
from reference.protocol.requirements import BY_ID, CATALOGUE
from tests.checks.cases import all_cases

CASES, PARAMS = all_cases()
IDS = [r.id for r in CATALOGUE]


def judge(requirement: str, broken: bool) -> tuple[Status, str]:
    trace = CASES[requirement](broken)
    engine = Engine({requirement: PARAMS.get(requirement, {})})
    (verdict,) = engine.feed_all(trace.records).finish()
    evidence = "; ".join(e.what for e in verdict.evidence)
    return verdict.status, f"{verdict.summary}: {evidence}"


def test_every_catalogue_id_has_a_monitor_and_nothing_else_does() -> None:
    Engine({})  # registers the monitors
    assert sorted(MONITORS) == sorted(BY_ID)


def test_every_catalogue_id_has_a_case() -> None:
    assert sorted(CASES) == sorted(IDS)


@pytest.mark.parametrize("requirement", IDS)
def test_conforming_trace_passes(requirement: str) -> None:
    if requirement not in CASES:
        pytest.fail(f"no case for {requirement}")
    status, why = judge(requirement, broken=False)
    assert status is Status.PASS, why


@pytest.mark.parametrize("requirement", IDS)
def test_broken_trace_fails(requirement: str) -> None:
    if requirement not in CASES:
        pytest.fail(f"no case for {requirement}")
    status, why = judge(requirement, broken=True)
    assert status is Status.FAIL, why
