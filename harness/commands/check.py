"""`harness check`: judge a stored trace again with the current monitors.

PATH is a run directory (reports/<run>), one scenario's directory, a
`trace.jsonl`, or a packet capture (`.pcap`, `.pcapng`: tcpdump, Wireshark, or
the harness's own `wire.pcapng`). A trace's records are streamed through the
same engine a live run uses, with the requirements, parameters and timings the
run stored in the scenario's result.json (every monitor with default timings
when there is none), so the verdicts are the ones the live run gave. A capture's
LVS connections become trace records (`harness.wire.capture_trace`) judged by
every monitor; the rules that need a Viewer's telemetry come out NOT_OBSERVED
unless `--telemetry` gives its file. Nothing is written unless `--output` asks
for it. Exit status: 1 if any verdict is FAIL, 2 on bad input, 0 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACE_NAME = "trace.jsonl"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", type=Path,
        help="a run directory, a scenario directory, a trace.jsonl, or a .pcap/.pcapng capture",
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated requirement IDs or patterns to judge (e.g. 'EPOCH-*,KEY-2')",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="judge every requirement, not only those the run asked for",
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--telemetry", type=Path, action="append", default=[],
        help="captures: a Viewer's telemetry file (PROTOCOL.md section 9); repeatable",
    )
    parser.add_argument(
        "--primary-port", type=int, default=None,
        help="captures: the Primary's TCP port (default: found from who sends AUTH_CHALLENGE)",
    )


class CheckInputError(Exception):
    """PATH does not hold what `harness check` reads; the message says why."""


@dataclass
class Target:
    name: str
    trace: Path
    config: dict[str, Any]
    capture: bool = False


def _load_config(directory: Path) -> dict[str, Any]:
    result = directory / "result.json"
    if not result.exists():
        return {}
    try:
        stored = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckInputError(f"{result}: unreadable result.json ({exc})") from None
    config = stored.get("checks") if isinstance(stored, dict) else None
    return config if isinstance(config, dict) else {}


def targets(path: Path) -> list[Target]:
    if not path.exists():
        raise CheckInputError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix in CAPTURE_SUFFIXES:
            return [Target(path.name, path, {}, capture=True)]
        return [Target(path.parent.name or path.stem, path, _load_config(path.parent))]
    if (path / TRACE_NAME).exists():
        return [Target(path.name, path / TRACE_NAME, _load_config(path))]
    found = sorted((path / "scenarios").glob(f"*/{TRACE_NAME}"))
    if not found:
        raise CheckInputError(f"{path}: neither a {TRACE_NAME} nor a run directory holding one")
    return [Target(t.parent.name, t, _load_config(t.parent)) for t in found]


def _selected(requested: dict[str, Any], only: str | None) -> dict[str, Any]:
    if not only:
        return requested
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return {
        rid: params
        for rid, params in requested.items()
        if any(fnmatch.fnmatchcase(rid, p) for p in patterns)
    }


def capture_records(target: Target, args: argparse.Namespace) -> list[dict[str, Any]]:
    from harness.wire.capture_trace import align_telemetry, capture_trace, read_telemetry_file

    found = capture_trace(target.trace, args.primary_port)
    if not found.connections:
        raise CheckInputError(f"{target.trace}: no LVS connection in the capture")
    records = list(found.records)
    summary = f"{found.connections} LVS connection(s), {found.skipped} other TCP connection(s)"
    for telemetry_path in args.telemetry:
        telemetry = read_telemetry_file(telemetry_path)
        shift = align_telemetry(telemetry, found.records)
        records += [dict(r, t=r["t"] + shift) for r in telemetry]
        summary += f"; {telemetry_path.name}: {len(telemetry)} record(s), shifted {shift:+.3f} s"
    for gap in found.gaps:
        summary += f"; capture gap: {gap}"
    print(f"{target.trace}: {summary}", file=sys.stderr)
    records.sort(key=lambda r: r["t"])
    return records


def judge(
    target: Target, only: str | None, everything: bool, args: argparse.Namespace | None = None
) -> list[dict[str, Any]]:
    from harness.checks.config import timings_from
    from harness.checks.engine import Engine
    from harness.trace import iter_trace
    from reference.protocol.requirements import BY_ID

    stored = target.config.get("requested")
    if everything or not isinstance(stored, dict):
        requested: dict[str, Any] = {rid: (stored or {}).get(rid, {}) for rid in BY_ID}
    else:
        requested = dict(stored)
    requested = _selected(requested, only)
    engine = Engine(requested, timings_from(target.config))
    records = (
        capture_records(target, args) if target.capture and args is not None
        else iter_trace(target.trace)
    )
    for record in records:
        engine.feed(record)
    return [
        {**v.as_dict(), "rule": BY_ID[v.requirement].rule if v.requirement in BY_ID else ""}
        for v in engine.finish()
    ]


def run(args: argparse.Namespace) -> int:
    from harness.trace import TraceFormatError
    from harness.wire.capture_format import CaptureFormatError
    from reference.protocol.telemetry import TelemetryError

    try:
        found = targets(args.path)
        if args.only and not any(
            fnmatch.fnmatchcase(rid, p.strip())
            for rid in _catalogue_ids()
            for p in args.only.split(",")
        ):
            raise CheckInputError(f"--only {args.only!r} matches no requirement ID")
        results = {t.name: judge(t, args.only, args.all, args) for t in found}
    except (CheckInputError, TraceFormatError, TelemetryError, CaptureFormatError, OSError) as exc:
        print(f"harness check: {exc}", file=sys.stderr)
        return 2
    document: dict[str, Any]
    if len(found) == 1:
        document = {"name": found[0].name, "trace": str(found[0].trace),
                    "requirements": results[found[0].name]}
    else:
        document = {"scenarios": {name: {"requirements": v} for name, v in results.items()}}
    text = json.dumps(document, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        _print_table(results)
    failed = any(v["status"] == "FAIL" for verdicts in results.values() for v in verdicts)
    return 1 if failed else 0


def _catalogue_ids() -> list[str]:
    from reference.protocol.requirements import BY_ID

    return list(BY_ID)


def _print_table(results: dict[str, list[dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    colours = {"PASS": "green", "FAIL": "red"}
    table = Table(title="harness check")
    table.add_column("scenario", no_wrap=True)
    table.add_column("requirement", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for name, verdicts in results.items():
        for v in verdicts:
            colour = colours.get(v["status"], "yellow")
            first = v["evidence"][0]["what"] if v["evidence"] and v["status"] == "FAIL" else ""
            summary = f"{v['summary']}: {first}" if first else v["summary"]
            table.add_row(name, v["requirement"], f"[{colour}]{v['status']}[/]", summary)
    Console().print(table)
