"""The certification grade: every path, --strict, nothing decided, exit statuses."""

from __future__ import annotations

import pytest

from harness.certify.grade import (
    EXIT_NOTHING_RUN,
    Grade,
    catalogue_level,
    exit_status,
    overall,
    requirement_statuses,
)
from harness.checks.verdict import Status
from reference.protocol.requirements import BY_ID, CATALOGUE, Level

P, F, NO, INC, NA = (
    Status.PASS,
    Status.FAIL,
    Status.NOT_OBSERVED,
    Status.INCONCLUSIVE,
    Status.NOT_APPLICABLE,
)

# Levels stated by the test, so every path is exercised whatever the catalogue says today.
LEVELS = {"M-1": Level.MUST, "M-2": Level.MUST, "S-1": Level.SHOULD, "Y-1": Level.MAY}


def grade(
    statuses: dict[str, Status], *, strict: bool = False, expected_failures: set[str] | None = None
) -> Grade:
    return overall(
        statuses,
        strict=strict,
        expected_failures=expected_failures or set(),
        level_of=LEVELS.__getitem__,
    )


def test_every_decided_requirement_passed_is_conformant() -> None:
    assert grade({"M-1": P, "M-2": NO, "S-1": NA}) is Grade.CONFORMANT


def test_a_must_failure_is_not_conformant() -> None:
    assert grade({"M-1": F, "S-1": P}) is Grade.NOT_CONFORMANT
    # ...even beside an inconclusive requirement and a SHOULD failure.
    assert grade({"M-1": F, "M-2": INC, "S-1": F}) is Grade.NOT_CONFORMANT


def test_should_and_may_failures_are_warnings() -> None:
    assert grade({"M-1": P, "S-1": F}) is Grade.CONFORMANT_WITH_WARNINGS
    assert grade({"M-1": P, "Y-1": F}) is Grade.CONFORMANT_WITH_WARNINGS


def test_strict_makes_a_should_failure_blocking_but_not_a_may_failure() -> None:
    assert grade({"M-1": P, "S-1": F}, strict=True) is Grade.NOT_CONFORMANT
    assert grade({"M-1": P, "Y-1": F}, strict=True) is Grade.CONFORMANT_WITH_WARNINGS


def test_an_inconclusive_requirement_makes_the_grade_inconclusive() -> None:
    assert grade({"M-1": P, "M-2": INC}) is Grade.INCONCLUSIVE
    # A warning does not claim conformance while a requirement is undecided.
    assert grade({"M-1": P, "M-2": INC, "S-1": F}) is Grade.INCONCLUSIVE


def test_nothing_decided_is_never_conformant() -> None:
    assert grade({}) is Grade.INCONCLUSIVE
    assert grade({"M-1": NO, "S-1": NA}) is Grade.INCONCLUSIVE


def test_expected_failures_weigh_nothing() -> None:
    assert grade({"M-1": F, "M-2": P}, expected_failures={"M-1"}) is Grade.CONFORMANT
    assert (
        grade({"M-1": F, "M-2": P, "S-1": F}, expected_failures={"M-1"})
        is Grade.CONFORMANT_WITH_WARNINGS
    )
    # Expecting one failure does not excuse another.
    assert grade({"M-1": F, "M-2": F}, expected_failures={"M-1"}) is Grade.NOT_CONFORMANT
    # Only expected failures: nothing else was decided.
    assert grade({"M-1": F}, expected_failures={"M-1"}) is Grade.INCONCLUSIVE


def test_levels_come_from_the_catalogue_by_default() -> None:
    some_id = CATALOGUE[0].id
    assert catalogue_level(some_id) is BY_ID[some_id].level
    must = next(r.id for r in CATALOGUE if r.level is Level.MUST)
    assert overall({must: F}) is Grade.NOT_CONFORMANT
    assert overall({must: P}) is Grade.CONFORMANT
    with pytest.raises(KeyError):
        overall({"NOPE-1": F})


def test_requirement_statuses_roll_up_by_the_report_rule() -> None:
    per_scenario = {
        "a": {"M-1": P, "M-2": P, "S-1": NO, "Y-1": NA},
        "b": {"M-1": F, "M-2": INC, "S-1": P, "Y-1": NA},
        "c": {"M-1": INC, "M-2": P, "S-1": NO},
    }
    assert requirement_statuses(per_scenario) == {"M-1": F, "M-2": INC, "S-1": P, "Y-1": NA}
    assert requirement_statuses({"a": {"M-1": NO}, "b": {"M-1": NA}}) == {"M-1": NO}


@pytest.mark.parametrize(
    ("grade_", "expected"),
    [
        (Grade.CONFORMANT, 0),
        (Grade.CONFORMANT_WITH_WARNINGS, 0),
        (Grade.NOT_CONFORMANT, 1),
        (Grade.INCONCLUSIVE, 3),
    ],
)
def test_exit_status_per_grade(grade_: Grade, expected: int) -> None:
    assert exit_status(grade_, scenarios_run=3) == expected


def test_nothing_run_has_its_own_exit_status() -> None:
    assert exit_status(Grade.INCONCLUSIVE, scenarios_run=0) == EXIT_NOTHING_RUN == 5


def test_grade_values_are_the_certificate_words() -> None:
    assert [g.value for g in Grade] == [
        "CONFORMANT",
        "CONFORMANT WITH WARNINGS",
        "NOT CONFORMANT",
        "INCONCLUSIVE",
    ]
