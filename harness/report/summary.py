"""One run's report.json: every collected scenario file, whatever became of it.

The report is built from what pytest saw (each item's outcome, from xdist workers
too) joined with the `result.json` each scenario wrote, so a scenario that was
killed, interrupted or never loaded still appears, as ERROR or as a broken file.

Time base: every `t` and `started` is seconds since the run started; `run.started`
anchors that zero to the wall clock (ISO 8601 with its UTC offset). Traces record
CLOCK_MONOTONIC, which is system-wide on Linux, so a trace time converts by
subtracting `run.clock.monotonic_at_start`.

Paths are relative to the report directory (the folder holding report.json).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks.verdict import Status
from harness.report.rollup import (
    SCENARIO_ERROR,
    SCENARIO_NOT_APPLICABLE,
    SCENARIO_PASS,
    roll_up,
    scenario_statuses,
    scenario_verdict,
)
from harness.trace import viewer_tap_name
from reference.protocol.requirements import BY_ID, CATALOGUE

SCHEMA_VERSION = 2


@dataclass
class RunInfo:
    id: str
    seed: int
    directory: Path
    started: float  # time.time() at the start
    monotonic_at_start: float  # time.monotonic() at the same moment
    command: str
    interrupted: bool = False
    exit_status: int | None = None


@dataclass
class ItemOutcome:
    """What pytest reported for one scenario item."""

    file: str
    name: str
    outcome: str  # passed | failed | skipped
    start: float | None = None  # time.time() when the item's call began
    duration: float = 0.0
    result: str | None = None  # the result.json it wrote
    broken: str | None = None  # the loader's error, for a file that is no scenario
    reason: str | None = None  # why it failed, when no result explains it
    extra: dict[str, Any] = field(default_factory=dict)


def versions() -> dict[str, str]:
    import shutil

    import av
    import scapy

    from harness.toxiproxy.launcher import BINARY_NAME

    libavcodec = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    return {
        "python": platform.python_version(),
        "harness": _harness_version(),
        "pyav": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "") or "?"),
        "libavcodec": libavcodec or "?",
        "scapy": scapy.VERSION,
        "toxiproxy": "binary on PATH" if shutil.which(BINARY_NAME) else "embedded",
        "platform": platform.platform(),
    }


def _harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lvs-harness")
    except PackageNotFoundError:
        return "source"


def relative(path: object, base: Path) -> str | None:
    """A path as seen from the report directory (POSIX separators)."""
    if not path:
        return None
    return Path(os.path.relpath(Path(str(path)).resolve(), base.resolve())).as_posix()


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="milliseconds")


def _trace_facts(trace: Path | None) -> dict[str, Any]:
    """The trace's first time and the peers' identities, from one pass over its lines."""
    facts: dict[str, Any] = {"first_t": None, "viewers": {}, "primary_command": None}
    if trace is None or not trace.exists():
        return facts
    viewers: dict[str, dict[str, Any]] = facts["viewers"]
    with trace.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            # Most lines are frames; only these few kinds name a peer.
            wanted = facts["first_t"] is None or any(
                word in line for word in ('"HELLO|', '"hello"', '"command"')
            )
            if not wanted:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if facts["first_t"] is None and isinstance(record.get("t"), int | float):
                facts["first_t"] = float(record["t"])
            if record.get("event") == "hello" and record.get("viewer"):
                viewers.setdefault(str(record["viewer"]), {})["implementation"] = record.get(
                    "implementation"
                )
            elif str(record.get("msg", "")).startswith("HELLO|") and str(
                record.get("tap", "")
            ).startswith(viewer_tap_name("")):
                viewer = str(record["tap"]).split(":", 1)[1]
                fields = dict(
                    part.split("=", 1) for part in str(record["msg"]).split("|")[1:] if "=" in part
                )
                viewers.setdefault(viewer, {}).setdefault("client", fields.get("client"))
            elif record.get("kind") == "action" and record.get("command"):
                if record.get("action") == "join" and record.get("viewer"):
                    viewers.setdefault(str(record["viewer"]), {})["command"] = record["command"]
                elif record.get("action") == "primary_started":
                    facts["primary_command"] = record["command"]
    return facts


def _peers(facts: dict[str, Any]) -> dict[str, Any]:
    command = facts["primary_command"]
    viewers = {
        vid: {
            "kind": "external" if info.get("command") else "reference",
            "command": info.get("command"),
            "implementation": info.get("implementation"),
            "client": info.get("client"),
        }
        for vid, info in sorted(facts["viewers"].items())
    }
    return {
        "primary": {
            "kind": "external" if command else "reference",
            "command": command,
            "implementation": None if command else "lvs-reference-primary",
        },
        "viewers": viewers,
    }


def _shift(t: object, offset: float) -> float | None:
    return round(float(t) - offset, 6) if isinstance(t, int | float) else None


def scenario_entry(run: RunInfo, item: ItemOutcome, result: dict[str, Any]) -> dict[str, Any]:
    """A scenario's result.json on the run's time base, with roll-up statuses and peers."""
    base = run.directory
    trace = Path(result["trace"]) if result.get("trace") else None
    facts = _trace_facts(trace)
    mono0 = run.monotonic_at_start
    if facts["first_t"] is not None:
        started = round(facts["first_t"] - mono0, 6)
    elif item.start is not None:
        started = round(item.start - run.started, 6)
    else:
        started = None
    statuses = scenario_statuses(result)
    requirements = []
    for verdict in result.get("requirements", []):
        status = statuses.get(verdict["requirement"], Status(verdict["status"]))
        entry = {
            **verdict,
            "status": status.value,
            "evidence": [{**e, "t": _shift(e.get("t"), mono0)} for e in verdict["evidence"]],
        }
        if status.value != verdict["status"]:
            entry["checker_status"] = verdict["status"]
        requirements.append(entry)
    decided = {v["requirement"] for v in requirements}
    for requirement in sorted(set(statuses) - decided):
        requirements.append(_undecided(requirement, statuses[requirement], result))
    timeline = [
        {**step, "t": round(step["t"] + started, 6) if started is not None else step["t"]}
        for step in result.get("timeline", [])
    ]
    verdict = scenario_verdict(result)
    return {
        **result,
        "path": relative(result.get("path") or item.file, base),
        "trace": relative(result.get("trace"), base),
        "pcap": relative(result.get("pcap"), base),
        "testees": {
            role: {**logs, "stdout": relative(logs["stdout"], base),
                   "stderr": relative(logs["stderr"], base)}
            for role, logs in result.get("testees", {}).items()
        },
        "verdict": verdict,
        "started": started,
        "timeline": timeline,
        "requirements": requirements,
        "peers": _peers(facts),
    }


def _undecided(requirement: str, status: Status, result: dict[str, Any]) -> dict[str, Any]:
    reason = "; ".join(result.get("problems", [])) or "the scenario did not decide it"
    summary = f"not decided: {reason}"
    if result.get("not_applicable"):
        summary = f"not applicable: {result['not_applicable']}"
    return {
        "requirement": requirement,
        "status": status.value,
        "summary": summary,
        "evidence": [],
        "rule": BY_ID[requirement].rule if requirement in BY_ID else "",
    }


def error_entry(run: RunInfo, item: ItemOutcome) -> dict[str, Any]:
    """A scenario that left no result (killed, timed out by pytest, interrupted): ERROR."""
    from harness.scenarios.loader import ScenarioError, load_scenario

    covers: list[str] = []
    name = item.name
    with contextlib.suppress(ScenarioError):
        scenario = load_scenario(Path(item.file))
        covers, name = list(scenario.covers), scenario.name
    reason = item.reason or "the scenario ended without a result"
    result: dict[str, Any] = {
        "name": name,
        "path": item.file,
        "covers": covers,
        "seed": run.seed,
        "duration": round(item.duration, 3),
        "problems": [reason],
        "completed": False,
        "failures": [reason],
        "trace": None,
        "pcap": None,
        "backends": {},
        "timeline": [],
        "requirements": [],
    }
    statuses = scenario_statuses(result)
    return {
        **result,
        "path": relative(item.file, run.directory),
        "verdict": SCENARIO_ERROR,
        "started": round(item.start - run.started, 6) if item.start is not None else None,
        "requirements": [_undecided(r, statuses[r], result) for r in covers],
        "peers": None,
    }


def requirement_matrix(scenarios: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requirement ID -> its rolled-up status over the run, and each scenario's status."""
    matrix: dict[str, dict[str, Any]] = {}
    for r in CATALOGUE:
        matrix[r.id] = {"rule": r.rule, "verdict": Status.NOT_OBSERVED.value, "scenarios": []}
    for scenario in scenarios:
        for verdict in scenario["requirements"]:
            entry = matrix.get(verdict["requirement"])
            if entry is not None:
                entry["scenarios"].append(
                    {
                        "scenario": scenario["name"],
                        "status": verdict["status"],
                        "summary": verdict["summary"],
                        "evidence": verdict["evidence"],
                    }
                )
    for entry in matrix.values():
        entry["verdict"] = roll_up(Status(s["status"]) for s in entry["scenarios"]).value
    return matrix


def build_report(
    run: RunInfo, items: list[ItemOutcome], collection_errors: list[dict[str, str]]
) -> dict[str, Any]:
    scenarios: list[dict[str, Any]] = []
    broken = [
        {**e, "file": relative(e["file"], run.directory) or e["file"]} for e in collection_errors
    ]
    for item in items:
        if item.broken is not None:
            broken.append(
                {"file": relative(item.file, run.directory) or item.file, "error": item.broken}
            )
        elif item.result is not None and Path(item.result).exists():
            result = json.loads(Path(item.result).read_text(encoding="utf-8"))
            scenarios.append(scenario_entry(run, item, result))
        elif item.outcome != "skipped":
            scenarios.append(error_entry(run, item))
    scenarios.sort(key=lambda s: str(s["name"]))
    verdicts = ("PASS", "FAIL", "ERROR", SCENARIO_NOT_APPLICABLE)
    counts = {v: sum(1 for s in scenarios if s["verdict"] == v) for v in verdicts}
    requirements = requirement_matrix(scenarios)
    ok = (
        not run.interrupted
        and not broken
        and counts[SCENARIO_PASS] > 0  # nothing run (all not applicable) is never green
        and all(s["verdict"] in (SCENARIO_PASS, SCENARIO_NOT_APPLICABLE) for s in scenarios)
    )
    import time

    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run.id,
            "seed": run.seed,
            "started": _iso(run.started),
            "clock": {"unit": "s since run start", "monotonic_at_start": run.monotonic_at_start},
            "duration": round(time.time() - run.started, 3),
            "command": run.command,
            "interrupted": run.interrupted,
            "exit_status": run.exit_status,
            "versions": versions(),
            "codec_backends": sorted(
                {str(b) for s in scenarios for b in (s.get("backends") or {}).values() if b}
            ),
        },
        "outcome": "PASS" if ok else ("INTERRUPTED" if run.interrupted else "FAIL"),
        "totals": {
            "scenarios": len(scenarios) + len(broken),
            "passed": counts["PASS"],
            "failed": counts["FAIL"],
            "errors": counts["ERROR"],
            "broken": len(broken),
            "not_applicable": counts[SCENARIO_NOT_APPLICABLE],
            "requirements": {
                status.value: sum(1 for r in requirements.values() if r["verdict"] == status.value)
                for status in Status
            },
        },
        "broken_files": broken,
        "scenarios": scenarios,
        "requirements": requirements,
    }


def write_report(run: RunInfo, report: dict[str, Any]) -> Path:
    run.directory.mkdir(parents=True, exist_ok=True)
    path = run.directory / "report.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path


def report_schema() -> dict[str, Any]:
    """The JSON Schema report.json follows (shipped in the package)."""
    from importlib import resources

    text = resources.files("harness.report").joinpath("report.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema
