"""The known-issues file: failures a testee's maintainers already know about, until a date.

`--known-issues FILE` is a YAML list; each entry names one requirement ID, optionally
the scenarios it is known to fail in (a glob over scenario names), why, and when the
entry stops counting:

    - id: EPOCH-2
      scenario: reconfigure-*       # optional; without it, every scenario
      reason: "decoder reset lands one frame late (vendor bug 1234)"
      expires: 2027-03-31           # the last day the entry counts

A FAIL that an entry in force lists is an expected failure: the certificate shows it and
the grade ignores it. An entry whose failure did not happen, although its requirement was
decided in a scenario it names, is "no longer occurring"; one whose requirement no
matching scenario decided is "not exercised" (say, the scenario was left out with
--only), so that a filtered run never claims a fix. An entry past its date is ignored
and reported as expired: its failures count again.

A malformed file is a `KnownIssuesError` naming the file and line, raised before anything
runs.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.checks.verdict import Status
from reference.protocol.requirements import BY_ID

FIELDS = ("id", "scenario", "reason", "expires")
REQUIRED = ("id", "reason", "expires")
EXAMPLE = "- {id: EPOCH-2, scenario: 'reconfigure-*', reason: '...', expires: 2027-03-31}"
# The statuses that say a requirement was decided in a scenario, either way.
DECIDED = frozenset({Status.PASS, Status.FAIL})


class KnownIssuesError(Exception):
    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class KnownIssue:
    id: str
    reason: str
    expires: datetime.date
    scenario: str | None = None  # a glob over scenario names; None: every scenario
    line: int = 0  # where the entry starts in its file

    def matches(self, scenario: str, requirement_id: str) -> bool:
        return requirement_id == self.id and (
            self.scenario is None or fnmatch.fnmatchcase(scenario, self.scenario)
        )

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scenario": self.scenario,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
        }


@dataclass(frozen=True)
class KnownIssuesOutcome:
    """What a known-issues file did to one run's verdicts."""

    # (scenario, requirement ID) -> the entry that made that FAIL expected.
    expected: Mapping[tuple[str, str], KnownIssue]
    applied: tuple[KnownIssue, ...]
    no_longer_occurring: tuple[KnownIssue, ...]
    not_exercised: tuple[KnownIssue, ...]
    expired: tuple[KnownIssue, ...]

    def expected_requirements(
        self, per_scenario: Mapping[str, Mapping[str, Status]]
    ) -> frozenset[str]:
        """IDs that FAILed somewhere and only where the file expected it."""
        failures: dict[str, bool] = {}
        for scenario, statuses in per_scenario.items():
            for requirement_id, status in statuses.items():
                if status is Status.FAIL:
                    known = (scenario, requirement_id) in self.expected
                    failures[requirement_id] = failures.get(requirement_id, True) and known
        return frozenset(i for i, all_known in failures.items() if all_known)

    def known_issue(self, requirement_id: str) -> KnownIssue | None:
        """The first entry that made a FAIL of this ID expected, if any."""
        return next((k for (_, i), k in self.expected.items() if i == requirement_id), None)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "applied": [k.as_dict() for k in self.applied],
            "no_longer_occurring": [k.as_dict() for k in self.no_longer_occurring],
            "not_exercised": [k.as_dict() for k in self.not_exercised],
            "expired": [k.as_dict() for k in self.expired],
        }


NO_KNOWN_ISSUES = KnownIssuesOutcome({}, (), (), (), ())


def apply(
    issues: Iterable[KnownIssue],
    per_scenario: Mapping[str, Mapping[str, Status]],
    today: datetime.date,
) -> KnownIssuesOutcome:
    """Sort the entries by what happened to them in a run (scenario -> ID -> status)."""
    expected: dict[tuple[str, str], KnownIssue] = {}
    applied: list[KnownIssue] = []
    gone: list[KnownIssue] = []
    unexercised: list[KnownIssue] = []
    expired: list[KnownIssue] = []
    for issue in issues:
        if issue.expired(today):
            expired.append(issue)
            continue
        matched = [
            (scenario, requirement_id, status)
            for scenario, statuses in per_scenario.items()
            for requirement_id, status in statuses.items()
            if issue.matches(scenario, requirement_id)
        ]
        failures = [(s, i) for s, i, status in matched if status is Status.FAIL]
        for key in failures:
            expected.setdefault(key, issue)
        if failures:
            applied.append(issue)
        elif any(status in DECIDED for _, _, status in matched):
            gone.append(issue)
        else:
            unexercised.append(issue)
    return KnownIssuesOutcome(
        expected, tuple(applied), tuple(gone), tuple(unexercised), tuple(expired)
    )


# --- reading the file ---------------------------------------------------------------


def load_known_issues(path: Path) -> list[KnownIssue]:
    """The entries of a known-issues file, or a KnownIssuesError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnownIssuesError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KnownIssuesError(path, None, "not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise KnownIssuesError(path, line, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise KnownIssuesError(path, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise KnownIssuesError(
            path, 1, f"a known-issues file is a YAML list of entries, like: {EXAMPLE}"
        )
    return [_entry(path, node, item) for node, item in zip(root.value, data, strict=True)]


def _key_lines(node: yaml.Node) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def _entry(path: Path, node: yaml.Node, item: Any) -> KnownIssue:
    line = node.start_mark.line + 1
    if not isinstance(item, dict):
        raise KnownIssuesError(path, line, f"an entry is a mapping, like: {EXAMPLE}")
    lines = _key_lines(node)

    def fail(key: str, problem: str) -> KnownIssuesError:
        return KnownIssuesError(path, lines.get(key, line), problem)

    unknown = [str(k) for k in item if k not in FIELDS]
    if unknown:
        raise fail(unknown[0], f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    missing = [k for k in REQUIRED if k not in item]
    if missing:
        raise KnownIssuesError(path, line, f"entry lacks {', '.join(missing)}")
    requirement_id = item["id"]
    if not isinstance(requirement_id, str) or requirement_id not in BY_ID:
        raise fail("id", f"id: {requirement_id!r} is not in the requirement catalogue")
    scenario = item.get("scenario")
    if scenario is not None and (not isinstance(scenario, str) or not scenario.strip()):
        raise fail("scenario", "scenario: a scenario name or glob (e.g. 'reconfigure-*')")
    reason = item["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise fail("reason", "reason: say why the failure is known (a non-empty string)")
    return KnownIssue(
        requirement_id, reason.strip(), _expiry(item["expires"], fail), scenario, line
    )


def _expiry(value: Any, fail: Callable[[str, str], KnownIssuesError]) -> datetime.date:
    # YAML reads an unquoted 2027-03-31 as a date already; a quoted one is a string.
    if isinstance(value, datetime.datetime):
        raise fail("expires", "expires: a date (YYYY-MM-DD), not a time")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise fail("expires", f"expires: {value!r} is not a date (YYYY-MM-DD)")
