"""junit.xml validates against Jenkins' junit-10.xsd with one testcase per scenario x
requirement; report.json validates against the JSON Schema the package ships."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema

from harness.report.junit import render_junit
from harness.report.summary import report_schema
from tests.scenarios.suite_runs import FAST, ROOT, harness, report

XSD = Path(__file__).parent / "xsd" / "junit-10.xsd"

# Waits for a state the stream never reaches: the timeline stops at line 7.
ABORTED = (
    "lvs: 2\ncovers: [HB-1, SNAP-1]\nexpect: {HB-1: {}, SNAP-1: {}}\nviewers:\n  - id: v1\n"
    "timeline:\n  - wait: {viewer: v1, state: PAUSED}\n    within: 1\n  - hold: 1\n"
)
BROKEN = "lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}}\nbogus: 1\n"


@pytest.fixture(scope="module")
def first_connect(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance command: harness run scenarios/first-connect.yaml --junit out.xml."""
    out = tmp_path_factory.mktemp("first-connect")
    run = harness(
        str(ROOT / "scenarios" / "first-connect.yaml"),
        "--junit",
        "out.xml",
        "--report-dir",
        str(out / "report"),
        cwd=out,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    for name, text in (("fast", FAST), ("aborted", ABORTED), ("broken", BROKEN)):
        (folder / f"{name}.yaml").write_text(text)
    run = harness(str(folder), "--report-dir", str(folder / "out"), cwd=folder)
    assert run.returncode == 1, run.stdout + run.stderr
    return folder / "out"


def validate_junit(path: Path) -> ET.Element:
    xmlschema.XMLSchema(XSD).validate(path)
    return ET.parse(path).getroot()


def cases(root: ET.Element) -> dict[tuple[str, str], str]:
    """(classname, name) -> pass | failure | error | skipped."""
    out = {}
    for case in root.iter("testcase"):
        children = [c.tag for c in case]
        out[(case.get("classname", ""), case.get("name", ""))] = children[0] if children else "pass"
    return out


def test_acceptance_junit_validates_one_case_per_requirement(first_connect: Path) -> None:
    root = validate_junit(first_connect / "out.xml")
    data = report(first_connect / "report")
    (scenario,) = data["scenarios"]
    expected = {("lvs.first-connect", "scenario"): "pass"} | {
        ("lvs.first-connect", r["requirement"]): "pass" if r["status"] == "PASS" else "skipped"
        for r in scenario["requirements"]
    }
    assert cases(root) == expected
    assert set(scenario["covers"]) <= {name for _, name in expected}
    assert root.get("tests") == str(len(expected)) and root.get("failures") == "0"


def test_mixed_run_junit_says_error_for_inconclusive_and_broken(mixed: Path) -> None:
    found = cases(validate_junit(mixed / "junit.xml"))
    assert found[("lvs.aborted", "scenario")] == "error"
    assert found[("lvs.aborted", "HB-1")] == "error"  # INCONCLUSIVE
    assert found[("lvs.aborted", "SNAP-1")] == "error"
    assert found[("lvs.fast", "FRAME-1")] == "pass"
    broken = [k for k, v in found.items() if k[0] == "lvs.broken"]
    assert len(broken) == 1 and found[broken[0]] == "error" and broken[0][1].endswith("broken.yaml")


def test_an_aborted_timeline_is_inconclusive_everywhere(mixed: Path) -> None:
    data = report(mixed)
    aborted = next(s for s in data["scenarios"] if s["name"] == "aborted")
    assert aborted["verdict"] == "ERROR"
    statuses = {r["requirement"]: r["status"] for r in aborted["requirements"]}
    assert statuses["HB-1"] == statuses["SNAP-1"] == "INCONCLUSIVE"
    assert data["requirements"]["HB-1"]["verdict"] == "INCONCLUSIVE"
    assert data["requirements"]["FRAME-1"]["verdict"] == "PASS"
    page = (mixed / "report.html").read_text()
    assert "INCONCLUSIVE" in page


def test_failure_evidence_goes_into_junit() -> None:
    data: dict[str, Any] = {
        "run": {
            "id": "x",
            "started": "2026-01-01T00:00:00+00:00",
            "duration": 1.5,
            "interrupted": True,
        },
        "scenarios": [
            {
                "name": "s",
                "verdict": "FAIL",
                "duration": 1.0,
                "failures": ["KEY-1 FAIL: late"],
                "requirements": [
                    {
                        "requirement": "KEY-1",
                        "status": "FAIL",
                        "summary": "late",
                        "rule": "r",
                        "evidence": [{"t": 0.25, "where": "v1", "what": "keyframe after 2 s"}],
                    },
                    {
                        "requirement": "WD-1",
                        "status": "NOT_APPLICABLE",
                        "summary": "",
                        "evidence": [],
                    },
                ],
            },
        ],
        "broken_files": [],
    }
    root = ET.fromstring(render_junit(data))
    xmlschema.XMLSchema(XSD).validate(render_junit(data).decode())
    failure = next(c for c in root.iter("testcase") if c.get("name") == "KEY-1").find("failure")
    assert failure is not None and "t=0.250 v1: keyframe after 2 s" in (failure.text or "")
    assert cases(root)[("lvs.s", "WD-1")] == "skipped"
    assert cases(root)[("lvs.run", "interrupted")] == "error"


@pytest.mark.parametrize("which", ["first_connect", "mixed"])
def test_report_json_follows_the_shipped_schema(which: str, request: pytest.FixtureRequest) -> None:
    base: Path = request.getfixturevalue(which)
    path = base / "report" / "report.json" if which == "first_connect" else base / "report.json"
    data = json.loads(path.read_text())
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    assert data["schema_version"] == 2


def test_report_json_contract_details(first_connect: Path) -> None:
    import av

    data = report(first_connect / "report")
    run = data["run"]
    assert run["versions"]["ffmpeg"] == str(av.ffmpeg_version_info)
    assert "first-connect.yaml" in run["command"] and "--junit" in run["command"]
    assert run["started"][-6] in "+-"  # an ISO 8601 time with its UTC offset
    (scenario,) = data["scenarios"]
    assert scenario["peers"]["viewers"]["v1"]["implementation"] == "lvs-reference-viewer"
    assert scenario["peers"]["viewers"]["v1"]["client"] == "viewer"
    # One time base: evidence, steps and the scenario's start in seconds since the run began.
    assert 0 <= scenario["started"] < run["duration"]
    times = [e["t"] for r in scenario["requirements"] for e in r["evidence"] if e["t"] is not None]
    times += [step["t"] for step in scenario["timeline"]]
    assert times and all(scenario["started"] <= t <= run["duration"] for t in times)
