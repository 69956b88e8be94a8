"""A certification's grade: one status per requirement, then one grade for the testee.

Per requirement, the statuses the scenarios gave it roll up by the report's own rule
(harness/report/rollup.py: FAIL, else INCONCLUSIVE, else PASS, else NOT_OBSERVED or
NOT_APPLICABLE). The grade then weighs each requirement by its RFC 2119 level
(`Requirement.level`, PROTOCOL.md 1.2), checked in this order:

    NOT CONFORMANT            a MUST requirement FAILed (with `strict`, a SHOULD too);
    INCONCLUSIVE              some requirement is INCONCLUSIVE (a harness fault or a
                              cut-short run), or nothing was decided at all: no
                              requirement PASSed and none FAILed;
    CONFORMANT WITH WARNINGS  only SHOULD or MAY requirements FAILed;
    CONFORMANT                every decided requirement PASSed.

INCONCLUSIVE comes before the warnings on purpose: CONFORMANT WITH WARNINGS says every
MUST was met, which an undecided requirement does not let us say. A FAIL listed in the
known-issues file (an expected failure) weighs nothing. Nothing-run is never green: a
certification that decided nothing is INCONCLUSIVE, and one that ran no scenario at all
exits with its own status (`EXIT_NOTHING_RUN`) whatever the grade.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import Enum

from harness.checks.verdict import Status
from harness.report.rollup import roll_up
from reference.protocol.requirements import BY_ID, Level


class Grade(str, Enum):
    CONFORMANT = "CONFORMANT"
    CONFORMANT_WITH_WARNINGS = "CONFORMANT WITH WARNINGS"
    NOT_CONFORMANT = "NOT CONFORMANT"
    INCONCLUSIVE = "INCONCLUSIVE"


# `harness certify` exit statuses: a grade's, then the two that are not about the testee.
EXIT_STATUS: dict[Grade, int] = {
    Grade.CONFORMANT: 0,
    Grade.CONFORMANT_WITH_WARNINGS: 0,
    Grade.NOT_CONFORMANT: 1,
    Grade.INCONCLUSIVE: 3,
}
EXIT_USAGE = 4
EXIT_NOTHING_RUN = 5


def catalogue_level(requirement_id: str) -> Level:
    """The RFC 2119 level the catalogue gives an ID (KeyError for an unknown ID)."""
    return BY_ID[requirement_id].level


def requirement_statuses(
    per_scenario: Mapping[str, Mapping[str, Status]],
) -> dict[str, Status]:
    """Requirement ID -> its status over the run, from scenario -> ID -> status."""
    gathered: dict[str, list[Status]] = {}
    for statuses in per_scenario.values():
        for requirement_id, status in statuses.items():
            gathered.setdefault(requirement_id, []).append(status)
    return {requirement_id: roll_up(seen) for requirement_id, seen in gathered.items()}


def _blocking_levels(strict: bool) -> frozenset[Level]:
    """The levels whose FAIL makes a testee NOT CONFORMANT."""
    return frozenset({Level.MUST, Level.SHOULD} if strict else {Level.MUST})


def overall(
    statuses: Mapping[str, Status],
    *,
    strict: bool = False,
    expected_failures: Collection[str] = (),
    level_of: Callable[[str], Level] = catalogue_level,
) -> Grade:
    """The grade of requirement ID -> status (rolled up over the run).

    `expected_failures` are IDs whose every FAIL the known-issues file lists
    (`KnownIssuesOutcome.expected_requirements`): they weigh nothing, whatever their
    status (an expected FAIL rolls up as FAIL, so an INCONCLUSIVE of the same ID in
    another scenario is not seen here either). `level_of` gives an ID's RFC 2119 level
    (the catalogue's unless a caller states otherwise).
    """
    graded = {i: s for i, s in statuses.items() if i not in expected_failures}
    failed = [i for i, s in graded.items() if s is Status.FAIL]
    blocking = _blocking_levels(strict)
    if any(level_of(i) in blocking for i in failed):
        return Grade.NOT_CONFORMANT
    if Status.INCONCLUSIVE in graded.values():
        return Grade.INCONCLUSIVE
    if failed:
        return Grade.CONFORMANT_WITH_WARNINGS
    if Status.PASS not in graded.values():
        return Grade.INCONCLUSIVE  # nothing decided is never green
    return Grade.CONFORMANT


def exit_status(grade: Grade, *, scenarios_run: int) -> int:
    """What `harness certify` exits with: the grade's status, or nothing-run's."""
    return EXIT_NOTHING_RUN if scenarios_run == 0 else EXIT_STATUS[grade]
