"""Hand-built certificates, as `harness certify` writes them, with their scenario files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from reference.protocol.requirements import BY_ID

HOSTILE = "<script>alert('pwned')</script>"


def requirement(
    id_: str,
    status: str,
    scenarios: list[tuple[str, str]],
    *,
    expected_failure: bool = False,
    known_issue: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": id_,
        "level": BY_ID[id_].level.value,
        "rule": BY_ID[id_].rule,
        "status": status,
        "expected_failure": expected_failure,
        "known_issue": known_issue,
        "scenarios": [
            {
                "name": name,
                "status": scenario_status,
                "summary": f"{id_} {scenario_status.lower()} in {name}",
                "trace": f"{name}/trace.jsonl",
                "evidence": [
                    {"t": 1.25, "what": "STREAM_STATE|state=ACTIVE epoch=2", "where": "v1"}
                ]
                if scenario_status == "FAIL"
                else [],
            }
            for name, scenario_status in scenarios
        ],
    }


def scenario(name: str, verdict: str, *, faults: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "applicable": True,
        "reason": "",
        "verdict": verdict,
        "duration": 4.5,
        "trace": f"{name}/trace.jsonl",
        "harness_faults": faults or [],
        "problems": [],
    }


def not_applicable(name: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "applicable": False,
        "reason": reason,
        "verdict": "NOT_APPLICABLE",
        "duration": None,
        "trace": None,
        "harness_faults": [],
        "problems": [],
    }


KNOWN = {
    "id": "HB-1",
    "scenario": "heartbeat-*",
    "reason": "vendor bug 12: heartbeat late under load",
    "expires": "2027-03-31",
}


def viewer_certificate(grade: str = "NOT CONFORMANT") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "lvs-certificate",
        "grade": grade,
        "strict": False,
        "date": "2026-12-02T07:00:00Z",
        "testee": {
            "role": "viewer",
            "command": "my-viewer --connect {host}:{port} --secret {secret}",
            "address": None,
            "implementation": "AcmeViewer",
            "version": "1.4.2",
        },
        "harness": {"version": "0.9.0", "spec": "LVS 2 (PROTOCOL.md)", "python": "3.11.9"},
        "run": {
            "id": "20261202-070000-viewer",
            "seed": 1234,
            "report_dir": "reports/20261202-070000-viewer",
            "codec_backends": {"v1": "libavcodec h264"},
            "scenarios_run": 3,
            "scenarios_not_applicable": 1,
            "duration": 42.5,
        },
        "requirements": [
            requirement(
                "EPOCH-2", "FAIL", [("reconfigure-mid-stream", "FAIL"), ("first-connect", "PASS")]
            ),
            requirement(
                "HB-1",
                "FAIL",
                [("heartbeat-under-load", "FAIL")],
                expected_failure=True,
                known_issue=KNOWN,
            ),
            requirement("KEY-1", "PASS", [("first-connect", "PASS")]),
            requirement("AUTH-1", "NOT_APPLICABLE", []),
        ],
        "scenarios": [
            scenario("reconfigure-mid-stream", "FAIL"),
            scenario("first-connect", "PASS"),
            scenario(
                "heartbeat-under-load",
                "INCONCLUSIVE",
                faults=["STATE-2 FAILed on the reference Primary: ACTIVE 2 ms early"],
            ),
            not_applicable("legacy-primary-audit", "declares no viewer role"),
        ],
        "known_issues": {"applied": [KNOWN], "no_longer_occurring": [], "expired": []},
    }


def primary_certificate(grade: str = "CONFORMANT") -> dict[str, Any]:
    cert = viewer_certificate(grade)
    cert["testee"] = {
        "role": "primary",
        "command": None,
        "address": "192.0.2.7:7000",
        "implementation": None,
        "version": None,
    }
    cert["run"]["id"] = "20261202-080000-primary"
    cert["requirements"] = [
        requirement("AUTH-1", "PASS", [("first-connect", "PASS")]),
        requirement("KEY-1", "PASS", [("first-connect", "PASS")]),
    ]
    cert["scenarios"] = [scenario("first-connect", "PASS")]
    cert["known_issues"] = {"applied": [], "no_longer_occurring": [], "expired": []}
    return cert


def write_run(directory: Path, cert: dict[str, Any]) -> Path:
    """The scenario files a certificate links to, and certificate.json itself."""
    directory.mkdir(parents=True, exist_ok=True)
    for s in cert["scenarios"]:
        if s["trace"]:
            trace = directory / s["trace"]
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text('{"t":1.0,"kind":"note","what":"start"}\n', encoding="utf-8")
            (trace.parent / "result.json").write_text(json.dumps({"name": s["name"]}))
    (directory / "certificate.json").write_text(json.dumps(cert, indent=2), encoding="utf-8")
    return directory


def changed(cert: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    """A deep copy of `cert` with the value at `path` replaced."""
    copied = copy.deepcopy(cert)
    node: Any = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copied
