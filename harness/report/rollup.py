"""Verdict roll-up: one scenario's requirement statuses, then one status per requirement ID.

Within a scenario, a covered requirement is decided only if the timeline that was meant
to exercise it ran to its end: when a wait timed out, a step aborted or the scenario was
killed, a covered PASS or NOT_OBSERVED becomes INCONCLUSIVE (a FAIL stays a FAIL: the
violation was seen). Across scenarios, an ID is

    FAIL            if any scenario FAILed it,
    INCONCLUSIVE    else if any scenario was inconclusive about it,
    NOT_OBSERVED    else if no scenario decided it (PASS), or none mentioned it,
    PASS            otherwise.

NOT_APPLICABLE decides nothing; an ID that only ever was NOT_APPLICABLE stays so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.checks.verdict import Status

# Scenario verdicts: a Status is about one requirement, these are about a whole scenario.
SCENARIO_PASS, SCENARIO_FAIL, SCENARIO_ERROR = "PASS", "FAIL", "ERROR"
# Not run: the peers given cannot play it (the result's `not_applicable` says why).
SCENARIO_NOT_APPLICABLE = "NOT_APPLICABLE"


def timeline_completed(result: dict[str, Any]) -> bool:
    """A scenario's timeline ran to its end: no abort, timeout, crash or kill was recorded."""
    completed = result.get("completed")
    if isinstance(completed, bool):
        return completed
    return not result.get("problems")


def scenario_statuses(result: dict[str, Any]) -> dict[str, Status]:
    """Requirement ID -> this scenario's status for it, INCONCLUSIVE where the run was cut short."""
    covers = set(result.get("covers", []))
    if result.get("not_applicable"):
        return dict.fromkeys(sorted(covers), Status.NOT_APPLICABLE)
    completed = timeline_completed(result)
    statuses: dict[str, Status] = {}
    for verdict in result.get("requirements", []):
        status = Status(verdict["status"])
        if (
            not completed
            and verdict["requirement"] in covers
            and status in (Status.PASS, Status.NOT_OBSERVED)
        ):
            status = Status.INCONCLUSIVE
        statuses[verdict["requirement"]] = status
    if not completed:
        for requirement in covers - set(statuses):
            statuses[requirement] = Status.INCONCLUSIVE
    return statuses


def scenario_verdict(result: dict[str, Any]) -> str:
    """FAIL if a rule was broken or a covered one went unobserved in a complete run,
    ERROR if the timeline did not complete (and nothing failed), PASS otherwise;
    NOT_APPLICABLE if it was not run because the peers given cannot play it."""
    if result.get("not_applicable"):
        return SCENARIO_NOT_APPLICABLE
    statuses = scenario_statuses(result)
    if any(s is Status.FAIL for s in statuses.values()):
        return SCENARIO_FAIL
    if not timeline_completed(result):
        return SCENARIO_ERROR
    covers = set(result.get("covers", []))
    if any(statuses.get(r) is Status.NOT_OBSERVED for r in covers):
        return SCENARIO_FAIL
    return SCENARIO_PASS


def roll_up(statuses: Iterable[Status]) -> Status:
    """One requirement's status over the run, from each scenario's status for it."""
    seen = set(statuses)
    for decisive in (Status.FAIL, Status.INCONCLUSIVE):
        if decisive in seen:
            return decisive
    if Status.PASS in seen:
        return Status.PASS
    if seen == {Status.NOT_APPLICABLE}:
        return Status.NOT_APPLICABLE
    return Status.NOT_OBSERVED
