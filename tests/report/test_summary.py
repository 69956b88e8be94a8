"""report.json from hand-written results: time base, peers, killed and broken items."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from harness.report.summary import ItemOutcome, RunInfo, build_report, report_schema

MONO0 = 1000.0  # CLOCK_MONOTONIC at the run's start
STARTED = time.time() - 60  # the wall clock at the same moment


def run_info(directory: Path) -> RunInfo:
    return RunInfo(
        id="r1",
        seed=3,
        directory=directory,
        started=STARTED,
        monotonic_at_start=MONO0,
        command="harness run x",
    )


def scenario(directory: Path, name: str, records: list[dict[str, object]]) -> Path:
    folder = directory / "scenarios" / name
    folder.mkdir(parents=True)
    trace = folder / "trace.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = {
        "name": name,
        "path": str(directory.parent / f"{name}.yaml"),
        "covers": ["HB-1"],
        "seed": 3,
        "verdict": "PASS",
        "duration": 2.0,
        "problems": [],
        "failures": [],
        "trace": str(trace),
        "pcap": str(folder / "wire.pcapng"),
        "backends": {},
        "timeline": [{"t": 0.5, "step": "hold 1 s", "line": 4}],
        "requirements": [
            {
                "requirement": "HB-1",
                "status": "PASS",
                "summary": "ok",
                "rule": "r",
                "evidence": [{"t": MONO0 + 4.25, "what": "heartbeat", "where": "v1"}],
            }
        ],
    }
    (folder / "result.json").write_text(json.dumps(result))
    return folder / "result.json"


def test_one_time_base_peers_and_relative_paths(tmp_path: Path) -> None:
    out = tmp_path / "out"
    records: list[dict[str, object]] = [
        {"t": MONO0 + 3.0, "kind": "note", "text": "scenario s seed 3"},
        {"t": MONO0 + 3.1, "kind": "action", "action": "primary_started", "command": "prim -p 1"},
        {"t": MONO0 + 3.2, "kind": "action", "action": "join", "viewer": "v1", "command": "vw"},
        {
            "t": MONO0 + 3.3,
            "kind": "telemetry",
            "event": "hello",
            "viewer": "v1",
            "implementation": "their-viewer 1.2",
        },
        {
            "t": MONO0 + 3.4,
            "kind": "frame",
            "tap": "viewer_side:v1",
            "msg": "HELLO|client=tv|version=2",
        },
    ]
    result = scenario(out, "s", records)
    item = ItemOutcome(
        file=str(tmp_path / "s.yaml"), name="s", outcome="passed", result=str(result)
    )
    report = build_report(run_info(out), [item], [])
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    (entry,) = report["scenarios"]
    assert entry["started"] == 3.0
    assert entry["timeline"][0]["t"] == 3.5
    assert entry["requirements"][0]["evidence"][0]["t"] == 4.25
    assert (entry["path"], entry["trace"], entry["pcap"]) == (
        "../s.yaml",
        "scenarios/s/trace.jsonl",
        "scenarios/s/wire.pcapng",
    )
    assert entry["peers"] == {
        "primary": {"kind": "external", "command": "prim -p 1", "implementation": None},
        "viewers": {
            "v1": {
                "kind": "external",
                "command": "vw",
                "implementation": "their-viewer 1.2",
                "client": "tv",
            }
        },
    }
    assert report["outcome"] == "PASS"
    assert report["run"]["started"][:16] == time.strftime("%Y-%m-%dT%H:%M", time.localtime(STARTED))


def test_killed_and_broken_items_are_in_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    killed = tmp_path / "long.yaml"
    killed.write_text("lvs: 2\ncovers: [HB-1, KEY-1]\nexpect: {HB-1: {}, KEY-1: {}}\n")
    items = [
        ItemOutcome(
            file=str(killed),
            name="long",
            outcome="failed",
            start=STARTED + 1.0,
            duration=7.0,
            reason="call: Failed: Timeout (>3.0s) from pytest-timeout.",
        ),
        ItemOutcome(
            file=str(tmp_path / "bad.yaml"),
            name="bad",
            outcome="failed",
            broken="bad.yaml:2: not valid YAML",
        ),
    ]
    report = build_report(run_info(out), items, [])
    jsonschema.Draft202012Validator(report_schema()).validate(report)
    (entry,) = report["scenarios"]
    assert entry["verdict"] == "ERROR" and "Timeout" in entry["problems"][0]
    assert entry["started"] == 1.0
    assert {r["requirement"]: r["status"] for r in entry["requirements"]} == {
        "HB-1": "INCONCLUSIVE",
        "KEY-1": "INCONCLUSIVE",
    }
    assert report["broken_files"] == [
        {"file": "../bad.yaml", "error": "bad.yaml:2: not valid YAML"}
    ]
    assert report["totals"]["errors"] == 1 and report["totals"]["broken"] == 1
    assert report["outcome"] == "FAIL"
