"""Judge the testee, only the testee, on every rule of its role (docs/certify.md, "Judging").

A certification trace holds the testee and reference peers side by side. It is split
in two: the testee's records (the tap next to it, its telemetry, and everything that
is no peer's wire or telemetry: actions, faults, notes) and the harness's records (the
taps next to the reference peers, their telemetry, and the same shared records). The
engine judges every catalogue rule of the testee's side (and BOTH) on the first, and
every rule of the other side (and BOTH) on the second, as a health check of the
harness: a FAIL there is a harness fault, and the testee's verdicts in that scenario
become INCONCLUSIVE (never a testee FAIL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checks.engine import check_records
from harness.checks.verdict import Status, Verdict
from harness.scenarios.loader import Scenario
from harness.trace import PRIMARY_SIDE, Record, viewer_tap_name
from reference.protocol.requirements import CATALOGUE, Side

VIEWER, PRIMARY = "viewer", "primary"
_SIDE = {VIEWER: Side.VIEWER, PRIMARY: Side.PRIMARY}
_OTHER = {VIEWER: PRIMARY, PRIMARY: VIEWER}
TELEMETRY = "telemetry"
# Params the engine needs from the scenario itself when its `expect` does not give them.
AUTH_RULES_WITH_SECRET = ("AUTH-1", "AUTH-2")
VERSION_RULE = "VER-2"


@dataclass
class CertifiedVerdicts:
    testee: list[Verdict]
    harness: list[Verdict]
    # "<ID> FAILed on the reference <peer>: <summary>", one per harness fault.
    harness_faults: list[str] = field(default_factory=list)


def side_rules(role: str) -> list[str]:
    """Every catalogue rule judged on a peer of `role`: its side's and BOTH, catalogue order."""
    wanted = {_SIDE[role], Side.BOTH}
    return [r.id for r in CATALOGUE if r.side in wanted]


def rule_params(scenario: Scenario, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each ID with what the scenario itself states, overridden by its `expect` params.

    The secret reaches AUTH-1/AUTH-2 even where `expect` lists them without it: without
    the secret a Primary that accepts a wrong answer cannot be caught.
    """
    params: dict[str, dict[str, Any]] = {}
    for rid in ids:
        stated: dict[str, Any] = {}
        if rid in AUTH_RULES_WITH_SECRET:
            stated["secret"] = scenario.secret
        elif rid == VERSION_RULE and scenario.primary.version != 2:
            stated["primary_version"] = scenario.primary.version
        params[rid] = {**stated, **(scenario.expect.get(rid) or {})}
    return params


def _belongs(record: Record, role: str, testee_id: str) -> bool | None:
    """True: the testee's record; False: a reference peer's; None: shared by both sides."""
    tap = record.get("tap")
    if tap is not None:
        mine = viewer_tap_name(testee_id) if role == VIEWER else PRIMARY_SIDE
        return bool(tap == mine)
    if record.get("kind") == TELEMETRY:
        return role == VIEWER and record.get("viewer") == testee_id
    return None


def split(
    records: Iterable[Record], owner: Callable[[Record], bool | None]
) -> tuple[list[Record], list[Record]]:
    """(testee records, harness records) by `owner` (True: the testee's, False: a
    reference peer's, None: shared); each keeps the shared ones, in trace order."""
    testee: list[Record] = []
    harness: list[Record] = []
    for record in records:
        mine = owner(record)
        if mine is not False:
            testee.append(record)
        if mine is not True:
            harness.append(record)
    return testee, harness


def partition(
    records: Iterable[Record], role: str, testee_id: str
) -> tuple[list[Record], list[Record]]:
    """(testee records, harness records) of a certification with one testee."""
    return split(records, lambda record: _belongs(record, role, testee_id))


def peer_name(role: str, scenario: Scenario, testee_id: str) -> str:
    """How a harness fault names the reference peer(s) it was seen on."""
    if role == PRIMARY:
        return "Viewer" if len(scenario.viewers) == 1 else "Viewers"
    return "Primary"


def judge_certification(
    records: Iterable[Record],
    scenario: Scenario,
    role: str,
    testee_id: str,
    *,
    only: Iterable[str] | None = None,
) -> CertifiedVerdicts:
    """The testee's verdicts (INCONCLUSIVE where the harness failed) and the harness's own.

    `only` narrows the testee's rules (e.g. `--only EPOCH-*`); the harness is always
    checked on every rule of its side, since a fault anywhere in it taints the run.
    """
    testee_records, harness_records = partition(records, role, testee_id)
    ids = side_rules(role)
    if only is not None:
        chosen = set(only)
        ids = [r for r in ids if r in chosen]
    testee = check_records(testee_records, rule_params(scenario, ids), scenario.timings)
    harness_ids = side_rules(_OTHER[role])
    harness = check_records(harness_records, rule_params(scenario, harness_ids), scenario.timings)
    peer = peer_name(role, scenario, testee_id)
    faults = [
        f"{v.requirement} FAILed on the reference {peer}: {v.summary}"
        for v in harness
        if v.status is Status.FAIL
    ]
    if faults:
        summary = "harness fault: " + "; ".join(f.split(":", 1)[0] for f in faults)
        testee = [
            Verdict(v.requirement, Status.INCONCLUSIVE, f"{summary} ({v.status.value} otherwise)")
            for v in testee
        ]
    return CertifiedVerdicts(testee, harness, faults)


def verdict_map(verdicts: Iterable[Verdict]) -> Mapping[str, Verdict]:
    return {v.requirement: v for v in verdicts}
