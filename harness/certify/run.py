"""One scenario of a certification run: substitute the testee, run, judge, record.

The pytest plugin calls `certify_scenario` for each scenario item when the session
is a certification (`--lvs-certify viewer|primary`); it writes `certification.json`
beside the scenario's trace, which `harness certify` gathers into the certificate.
A scenario the testee cannot play in is recorded as not applicable, with the reason,
and never run.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.certify.judge import PRIMARY, VIEWER, judge_certification, side_rules
from harness.certify.substitute import NotApplicable, substitute
from harness.checks.verdict import Status, Verdict
from harness.report.rollup import scenario_statuses, timeline_completed
from harness.scenarios.loader import Scenario
from harness.scenarios.network import Network
from harness.scenarios.operator import ControlPlan
from harness.scenarios.runner import ScenarioResult, run_scenario
from harness.trace import Record

CERTIFICATION_FILE = "certification.json"
HELLO_EVENT = "hello"
# A scenario's verdict for the testee (Status covers requirements; these cover a scenario).
SCENARIO_VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "NOT_APPLICABLE")


@dataclass(frozen=True)
class CertifyOptions:
    role: str
    command: str
    control: str | None = None
    only: tuple[str, ...] = ()  # requirement-ID globs
    exclude: tuple[str, ...] = ()

    def judged_ids(self) -> list[str]:
        """The testee's rules this run grades: its side's, narrowed by --only/--exclude."""
        return select_ids(side_rules(self.role), self.only, self.exclude)


def select_ids(ids: Iterable[str], only: Sequence[str], exclude: Sequence[str]) -> list[str]:
    def hit(rid: str, globs: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(rid, g) for g in globs)

    return [r for r in ids if (not only or hit(r, only)) and not hit(r, exclude)]


def testee_id(scenario: Scenario, role: str) -> str:
    """Whose records are the testee's: the replaced Viewer's id, or the Primary."""
    if role == VIEWER:
        return scenario.roles.viewer or ""
    return PRIMARY


def implementation(records: Iterable[Record], role: str, viewer: str) -> str | None:
    """The testee Viewer's own name from its telemetry `hello`, if it sent one."""
    if role != VIEWER:
        return None
    for record in records:
        if (
            record.get("kind") == "telemetry"
            and record.get("event") == HELLO_EVENT
            and record.get("viewer") == viewer
        ):
            name = record.get("implementation")
            return str(name) if name is not None else None
    return None


def _skip_reason(scenario: Scenario, options: CertifyOptions, judged: list[str]) -> str | None:
    if not judged:
        return "--only/--exclude leave none of the testee's rules to judge"
    if options.only and not set(scenario.covers) & set(judged):
        return f"covers none of --only {' '.join(options.only)}"
    return None


def not_applicable(scenario: Scenario, reason: str, directory: Path) -> dict[str, Any]:
    entry = {
        "name": scenario.name,
        "path": str(scenario.path),
        "applicable": False,
        "reason": reason,
        "verdict": "NOT_APPLICABLE",
        "duration": 0.0,
        "trace": None,
        "problems": [],
        "harness_faults": [],
        "covers": scenario.covers,
        "requirements": [],
        "implementation": None,
    }
    _write(directory, entry)
    return entry


def certify_scenario(
    scenario: Scenario,
    directory: Path,
    seed: int,
    options: CertifyOptions,
    *,
    control: ControlPlan | None = None,
    network: Network | None = None,
) -> tuple[dict[str, Any], ScenarioResult | None]:
    """Run the scenario with the testee in it (or record why not): (entry, result or None)."""
    judged = options.judged_ids()
    try:
        substituted = substitute(
            scenario,
            options.role,
            options.command,
            options.control,
            operator=control is not None and control.operator,
        )
        reason = _skip_reason(scenario, options, judged)
    except NotApplicable as exc:
        reason = str(exc)
    if reason is not None:
        return not_applicable(scenario, reason, directory), None
    scenario = substituted
    who = testee_id(scenario, options.role)
    outcome: dict[str, Any] = {}

    def judge(records: list[Record], run: Scenario) -> list[Verdict]:
        verdicts = judge_certification(records, run, options.role, who, only=judged)
        outcome["faults"] = verdicts.harness_faults
        outcome["harness"] = [v.as_dict() for v in verdicts.harness]
        outcome["implementation"] = implementation(records, options.role, who)
        return verdicts.testee

    result = run_scenario(scenario, directory, seed, judge, control=control, network=network)
    if result.not_applicable is not None and not any(
        v.status is Status.FAIL for v in result.verdicts
    ):
        # The runner's own reasons (no test-control interface and no operator, ...), or a
        # situation that never arose; a FAIL judged before that stands (below).
        return not_applicable(scenario, result.not_applicable, directory), result
    as_dict = result.as_dict()
    statuses = scenario_statuses(as_dict)
    requirements = [
        {**v, "status": statuses.get(v["requirement"], Status(v["status"])).value}
        for v in as_dict["requirements"]
    ]
    faults: list[str] = outcome.get("faults", [])
    entry = {
        "name": scenario.name,
        "path": str(scenario.path),
        "applicable": True,
        "reason": "",
        "verdict": _verdict(statuses.values(), faults, timeline_completed(as_dict)),
        "duration": round(result.duration, 3),
        "trace": result.trace_path,
        "problems": result.problems,
        "harness_faults": faults,
        "harness_verdicts": outcome.get("harness", []),
        "covers": scenario.covers,
        "requirements": requirements,
        "implementation": outcome.get("implementation"),
        "seed": result.seed,
    }
    _write(directory, entry)
    return entry, result


def _verdict(statuses: Iterable[Status], faults: list[str], completed: bool) -> str:
    seen = set(statuses)
    if Status.FAIL in seen:
        return "FAIL"
    if faults or not completed or Status.INCONCLUSIVE in seen:
        return "INCONCLUSIVE"
    return "PASS"


def _write(directory: Path, entry: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CERTIFICATION_FILE).write_text(json.dumps(entry, indent=2), encoding="utf-8")


def gather(run_dir: Path) -> list[dict[str, Any]]:
    """Every scenario's certification entry under a run directory, by name."""
    entries = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((run_dir / "scenarios").glob(f"*/{CERTIFICATION_FILE}"))
    ]
    return sorted(entries, key=lambda e: str(e["name"]))


ROLES = (VIEWER, PRIMARY)
