"""Verdicts and their evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_OBSERVED = "NOT_OBSERVED"
    # The timeline that should have exercised the rule did not complete: no decision either way.
    INCONCLUSIVE = "INCONCLUSIVE"
    # The rule does not apply to what this run exercised (e.g. a v1-only rule in a v2 session).
    NOT_APPLICABLE = "NOT_APPLICABLE"


@dataclass(frozen=True)
class Evidence:
    t: float | None
    what: str
    where: str = ""  # tap/conn or viewer id

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "what": self.what, "where": self.where}


@dataclass
class Verdict:
    requirement: str
    status: Status
    summary: str
    evidence: list[Evidence] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": [e.as_dict() for e in self.evidence],
        }


MAX_EVIDENCE = 12


def passed(req: str, summary: str, evidence: list[Evidence] | None = None) -> Verdict:
    return Verdict(req, Status.PASS, summary, (evidence or [])[:MAX_EVIDENCE])


def failed(req: str, summary: str, evidence: list[Evidence] | None = None) -> Verdict:
    return Verdict(req, Status.FAIL, summary, (evidence or [])[:MAX_EVIDENCE])


def inconclusive(req: str, summary: str, evidence: list[Evidence] | None = None) -> Verdict:
    return Verdict(req, Status.INCONCLUSIVE, summary, (evidence or [])[:MAX_EVIDENCE])


def not_observed(req: str, summary: str) -> Verdict:
    return Verdict(req, Status.NOT_OBSERVED, summary)


def judge(
    req: str,
    violations: list[Evidence],
    checked: int,
    what: str,
    support: list[Evidence] | None = None,
) -> Verdict:
    """The usual shape: FAIL with the violations, PASS if something was checked."""
    if violations:
        return failed(req, f"{len(violations)} violation(s) of {what}", violations)
    if checked == 0:
        return not_observed(req, f"the trace holds no {what} to check")
    return passed(req, f"{checked} {what} checked, all conform", support)
