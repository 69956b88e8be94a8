"""junit.xml for CI: one testcase per scenario x requirement, valid against Jenkins' junit-10.xsd.

Each scenario is a <testsuite>; inside it, one <testcase> per requirement the scenario
judged (classname `lvs.<scenario>`, name the requirement ID) and one named `scenario` for
the scenario as a whole, so that the file fails exactly when the run does. Statuses map to

    PASS            a plain testcase
    FAIL            <failure> with the summary and the evidence
    INCONCLUSIVE    <error>: the timeline did not complete, nothing was decided
    NOT_OBSERVED    <skipped>
    NOT_APPLICABLE  <skipped>

Broken scenario files and an interrupted run are <error> testcases of a suite named `lvs`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.checks.verdict import Status

SKIPPED = {Status.NOT_OBSERVED.value, Status.NOT_APPLICABLE.value}


def _seconds(value: object) -> str:
    return f"{float(value):.3f}" if isinstance(value, int | float) else "0"


def _evidence_text(verdict: dict[str, Any]) -> str:
    lines = [f"{verdict['requirement']} {verdict['status']}: {verdict.get('summary', '')}"]
    if verdict.get("rule"):
        lines.append(f"rule: {verdict['rule']}")
    for e in verdict.get("evidence", []):
        t = f"t={e['t']:.3f}" if isinstance(e.get("t"), int | float) else "t=-"
        lines.append(f"- {t} {e.get('where', '')}: {e.get('what', '')}")
    return "\n".join(lines)


class _Suite:
    def __init__(self, parent: ET.Element, name: str, time: object, timestamp: str) -> None:
        self.element = ET.SubElement(
            parent, "testsuite", name=name, time=_seconds(time), timestamp=timestamp
        )
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(
        self,
        classname: str,
        name: str,
        *,
        kind: str | None = None,
        message: str = "",
        text: str = "",
        time: object = 0,
    ) -> None:
        case = ET.SubElement(
            self.element, "testcase", classname=classname, name=name, time=_seconds(time)
        )
        self.counts["tests"] += 1
        if kind is not None:
            child = ET.SubElement(case, kind, message=message[:500], type=kind)
            child.text = text
            self.counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[kind]] += 1

    def close(self) -> dict[str, int]:
        for key, value in self.counts.items():
            self.element.set(key, str(value))
        return self.counts


def _requirement_case(suite: _Suite, classname: str, verdict: dict[str, Any]) -> None:
    status, summary = verdict["status"], str(verdict.get("summary", ""))
    kind = {Status.FAIL.value: "failure", Status.INCONCLUSIVE.value: "error"}.get(status)
    if status in SKIPPED:
        kind = "skipped"
    suite.case(
        classname,
        str(verdict["requirement"]),
        kind=kind,
        message=f"{status}: {summary}" if kind else "",
        text=_evidence_text(verdict) if kind in ("failure", "error") else "",
    )


def render_junit(report: dict[str, Any]) -> bytes:
    run = report.get("run", {})
    timestamp = str(run.get("started", ""))
    root = ET.Element("testsuites", name=f"lvs run {run.get('id', '?')}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    suites: list[_Suite] = []
    for scenario in report.get("scenarios", []):
        name = str(scenario["name"])
        classname = f"lvs.{name}"
        suite = _Suite(root, name, scenario.get("duration"), timestamp)
        verdict = scenario["verdict"]
        reasons = "\n".join(
            scenario.get("failures")
            or scenario.get("problems")
            or ([scenario["not_applicable"]] if scenario.get("not_applicable") else [])
        )
        kind = {"FAIL": "failure", "ERROR": "error", "NOT_APPLICABLE": "skipped"}.get(verdict)
        suite.case(
            classname,
            "scenario",
            kind=kind,
            message=f"{verdict}: {(reasons.splitlines() or [''])[0]}" if kind else "",
            text=reasons,
            time=scenario.get("duration"),
        )
        for requirement in scenario.get("requirements", []):
            _requirement_case(suite, classname, requirement)
        suites.append(suite)
    run_suite = _Suite(root, "lvs", run.get("duration"), timestamp)
    for broken in report.get("broken_files", []):
        error = str(broken.get("error", ""))
        run_suite.case(
            "lvs.broken",
            str(broken.get("file")),
            kind="error",
            message=f"broken scenario file: {error.splitlines()[0] if error else ''}",
            text=error,
        )
    if run.get("interrupted"):
        run_suite.case(
            "lvs.run",
            "interrupted",
            kind="error",
            message="the run was interrupted",
            text="the run was interrupted before every scenario finished",
        )
    if run_suite.counts["tests"]:
        suites.append(run_suite)
    else:
        root.remove(run_suite.element)
    for suite in suites:
        counts = suite.close()
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(run.get("duration")))
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


def write_junit(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_junit(report))
    return path
