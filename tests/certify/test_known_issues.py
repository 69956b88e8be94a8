"""The known-issues file: loading with file:line errors, and what each entry did to a run."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from harness.certify.grade import Grade, overall, requirement_statuses
from harness.certify.known_issues import (
    KnownIssue,
    KnownIssuesError,
    apply,
    load_known_issues,
)
from harness.checks.verdict import Status

P, F, NO = Status.PASS, Status.FAIL, Status.NOT_OBSERVED
TODAY = datetime.date(2026, 12, 2)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "known.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# vendor bugs\n"
        "- id: EPOCH-2\n"
        "  scenario: 'reconfigure-*'\n"
        "  reason: decoder reset lands late\n"
        "  expires: 2027-03-31\n"
        "- {id: HB-1, reason: 'quoted date', expires: '2026-12-02'}\n",
    )
    first, second = load_known_issues(path)
    assert first == KnownIssue(
        "EPOCH-2", "decoder reset lands late", datetime.date(2027, 3, 31), "reconfigure-*", 2
    )
    assert (second.id, second.scenario, second.expires, second.line) == (
        "HB-1",
        None,
        datetime.date(2026, 12, 2),
        6,
    )
    assert first.as_dict() == {
        "id": "EPOCH-2",
        "scenario": "reconfigure-*",
        "reason": "decoder reset lands late",
        "expires": "2027-03-31",
    }


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("- id: EPOCH-2\n  reason: [unclosed\n", 3, "not valid YAML"),
        ("id: EPOCH-2\n", 1, "a YAML list of entries"),
        ("", 1, "a YAML list of entries"),
        ("- just a string\n", 1, "an entry is a mapping"),
        ("- id: EPOCH-2\n  reason: r\n  expires: 2027-01-01\n  owner: me\n", 4, "unknown field"),
        ("- id: NOPE-9\n  reason: r\n  expires: 2027-01-01\n", 1, "not in the requirement"),
        ("- id: EPOCH-2\n  expires: 2027-01-01\n", 1, "entry lacks reason"),
        ("- id: EPOCH-2\n  reason: '  '\n  expires: 2027-01-01\n", 2, "reason:"),
        ("- id: EPOCH-2\n  reason: r\n  expires: next year\n", 3, "is not a date"),
        ("- id: EPOCH-2\n  reason: r\n  expires: 2027-01-01 10:00:00\n", 3, "not a time"),
        (
            "- id: EPOCH-2\n  reason: r\n  expires: 2027-01-01\n- id: HB-1\n  reason: r\n"
            "  scenario: 7\n  expires: 2027-01-01\n",
            6,
            "scenario:",
        ),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_line(
    tmp_path: Path, text: str, where: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(KnownIssuesError) as caught:
        load_known_issues(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{where}: "), message
    assert words in message


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(KnownIssuesError, match=r"absent\.yaml: cannot read"):
        load_known_issues(tmp_path / "absent.yaml")


def issue(
    id_: str, scenario: str | None = None, expires: datetime.date = datetime.date(2027, 1, 1)
) -> KnownIssue:
    return KnownIssue(id_, "known", expires, scenario)


RUN = {
    "reconfigure-mid-stream": {"EPOCH-2": F, "HB-1": P},
    "reconfigure-burst": {"EPOCH-2": F, "HB-1": P},
    "first-connect": {"EPOCH-2": F, "HB-1": P, "KEY-1": NO},
}


def test_a_glob_makes_only_the_matching_failures_expected() -> None:
    entry = issue("EPOCH-2", "reconfigure-*")
    outcome = apply([entry], RUN, TODAY)
    assert set(outcome.expected) == {
        ("reconfigure-mid-stream", "EPOCH-2"),
        ("reconfigure-burst", "EPOCH-2"),
    }
    assert outcome.applied == (entry,)
    # first-connect's EPOCH-2 failure is not listed, so the requirement still counts.
    assert outcome.expected_requirements(RUN) == frozenset()
    assert outcome.known_issue("EPOCH-2") is entry


def test_an_entry_without_a_scenario_covers_every_scenario() -> None:
    outcome = apply([issue("EPOCH-2")], RUN, TODAY)
    assert len(outcome.expected) == 3
    assert outcome.expected_requirements(RUN) == frozenset({"EPOCH-2"})


def test_a_listed_failure_that_did_not_happen_is_no_longer_occurring() -> None:
    entry = issue("HB-1")
    outcome = apply([entry], RUN, TODAY)
    assert outcome.no_longer_occurring == (entry,)
    assert outcome.applied == () and outcome.expected == {}


def test_a_listed_failure_that_nothing_decided_is_not_exercised() -> None:
    undecided, absent = issue("KEY-1"), issue("EPOCH-2", "late-join-*")
    outcome = apply([undecided, absent], RUN, TODAY)
    assert outcome.not_exercised == (undecided, absent)
    assert outcome.no_longer_occurring == ()


def test_an_expired_entry_is_ignored_and_reported() -> None:
    stale = issue("EPOCH-2", expires=datetime.date(2026, 12, 1))
    last_day = issue("EPOCH-2", "first-connect", expires=TODAY)
    outcome = apply([stale, last_day], RUN, TODAY)
    assert outcome.expired == (stale,)
    assert outcome.applied == (last_day,)
    assert set(outcome.expected) == {("first-connect", "EPOCH-2")}
    assert outcome.as_dict()["expired"] == [stale.as_dict()]
    assert set(outcome.as_dict()) == {"applied", "no_longer_occurring", "not_exercised", "expired"}


def test_expected_failures_reach_the_grade() -> None:
    """The path certify takes: apply the file, then grade without the expected IDs."""
    statuses = requirement_statuses(RUN)
    assert overall(statuses) is Grade.NOT_CONFORMANT
    everywhere = apply([issue("EPOCH-2")], RUN, TODAY)
    expected = everywhere.expected_requirements(RUN)
    assert overall(statuses, expected_failures=expected) is Grade.CONFORMANT
    partly = apply([issue("EPOCH-2", "reconfigure-*")], RUN, TODAY)
    assert overall(statuses, expected_failures=partly.expected_requirements(RUN)) is (
        Grade.NOT_CONFORMANT
    )
    expired = apply([issue("EPOCH-2", expires=datetime.date(2026, 1, 1))], RUN, TODAY)
    assert overall(statuses, expected_failures=expired.expected_requirements(RUN)) is (
        Grade.NOT_CONFORMANT
    )
