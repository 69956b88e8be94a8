"""The certificate of a certification run: scenarios' entries in, `certificate.json` out.

Each scenario's `certification.json` (harness/certify/run.py) gives its testee verdicts;
here they roll up per requirement (harness/certify/grade.py), known issues are applied
(harness/certify/known_issues.py), and the grade is set. The shape is
docs/certify.md's and harness/certify/certificate.schema.json's (schema_version 1);
paths in it are relative to the certificate's own folder.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.certify.certificate import KIND, SCHEMA_VERSION
from harness.certify.grade import Grade, overall, requirement_statuses
from harness.certify.known_issues import NO_KNOWN_ISSUES, KnownIssue, KnownIssuesOutcome, apply
from harness.checks.verdict import Status
from reference.protocol.requirements import BY_ID

SPEC = "LVS 2 (PROTOCOL.md)"


@dataclass(frozen=True)
class Testee:
    role: str
    command: str | None
    address: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class RunFacts:
    id: str
    seed: int
    report_dir: Path
    duration: float
    strict: bool = False


def per_scenario_statuses(entries: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Status]]:
    """scenario -> requirement ID -> its status there (applicable scenarios only)."""
    return {
        str(e["name"]): {str(r["requirement"]): Status(r["status"]) for r in e["requirements"]}
        for e in entries
        if e["applicable"]
    }


def _relative(path: str | None, base: Path) -> str | None:
    if not path:
        return None
    try:
        return os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:  # another drive: keep it absolute
        return path


def _codec_backends(report: Mapping[str, Any] | None) -> dict[str, str]:
    """Peer -> the codec backend(s) it used, from the suite report's scenarios."""
    seen: dict[str, set[str]] = {}
    for scenario in (report or {}).get("scenarios", []):
        for peer, backend in (scenario.get("backends") or {}).items():
            if backend:
                seen.setdefault(str(peer), set()).add(str(backend))
    return {peer: ", ".join(sorted(b)) for peer, b in sorted(seen.items())}


def build_certificate(
    entries: Sequence[Mapping[str, Any]],
    testee: Testee,
    run: RunFacts,
    judged_ids: Sequence[str],
    *,
    known_issues: Iterable[KnownIssue] = (),
    today: datetime.date | None = None,
    report: Mapping[str, Any] | None = None,
    harness_version: str = "unknown",
) -> dict[str, Any]:
    """The certificate as a dict (docs/certify.md); `grade` is set, nothing is written."""
    base = run.report_dir
    per_scenario = per_scenario_statuses(entries)
    issues = list(known_issues)
    outcome: KnownIssuesOutcome = (
        apply(issues, per_scenario, today or datetime.date.today()) if issues else NO_KNOWN_ISSUES
    )
    rolled = requirement_statuses(per_scenario)
    # Every judged ID is in the certificate, decided or not: an ID no scenario reached is
    # NOT_APPLICABLE (no applicable scenario ran) rather than missing.
    statuses = {rid: rolled.get(rid, Status.NOT_APPLICABLE) for rid in judged_ids}
    expected = outcome.expected_requirements(per_scenario)
    grade = overall(statuses, strict=run.strict, expected_failures=expected)
    requirements = []
    for rid in judged_ids:
        scenarios = []
        for entry in entries:
            for verdict in entry["requirements"]:
                if verdict["requirement"] == rid:
                    scenarios.append(
                        {
                            "name": entry["name"],
                            "status": verdict["status"],
                            "summary": verdict["summary"],
                            "trace": _relative(entry.get("trace"), base),
                            "evidence": verdict.get("evidence", []),
                        }
                    )
        known = outcome.known_issue(rid) if rid in expected else None
        requirements.append(
            {
                "id": rid,
                "level": BY_ID[rid].level.value,
                "rule": BY_ID[rid].rule,
                "status": statuses[rid].value,
                "expected_failure": rid in expected,
                "known_issue": known.as_dict() if known else None,
                "scenarios": scenarios,
            }
        )
    implementation = next((e["implementation"] for e in entries if e.get("implementation")), None)
    ran = [e for e in entries if e["applicable"]]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "grade": grade.value,
        "strict": run.strict,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "testee": {
            "role": testee.role,
            "command": testee.command,
            "address": testee.address,
            "implementation": implementation,
            "version": testee.version,
        },
        "harness": {"version": harness_version, "spec": SPEC, "python": platform.python_version()},
        "run": {
            "id": run.id,
            "seed": run.seed,
            "report_dir": str(run.report_dir),
            "codec_backends": _codec_backends(report),
            "scenarios_run": len(ran),
            "scenarios_not_applicable": len(entries) - len(ran),
            "duration": round(run.duration, 3),
        },
        "requirements": requirements,
        "scenarios": [
            {
                "name": e["name"],
                "applicable": e["applicable"],
                "reason": e["reason"],
                "verdict": e["verdict"],
                "duration": e["duration"],
                "trace": _relative(e.get("trace"), base),
                "harness_faults": e["harness_faults"],
                "problems": e["problems"],
            }
            for e in entries
        ],
        "known_issues": outcome.as_dict(),
    }


def write_certificate(certificate: dict[str, Any], directory: Path) -> Path:
    """Check the certificate against its schema; write certificate.json, .html and badge.svg."""
    from harness.certify.render import write_certificate_files

    return write_certificate_files(certificate, directory)[0]


def grade_of(certificate: Mapping[str, Any]) -> Grade:
    return Grade(certificate["grade"])
