"""`harness run`: the scenario suite through pytest (and xdist), with a rich front end.

The pytest plugin writes the reports (report.json, report.html, junit.xml) at the end
of the session; this front end shows progress, then prints the summary from report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.pytest_plugin import DEFAULT_SEED, RUN_DIR_ENV, RUN_ID_ENV, SEED_ENV

VERDICT_COLOURS = {
    "PASS": "green",
    "FAIL": "red",
    "ERROR": "red",
    "INCONCLUSIVE": "yellow",
    "NOT_OBSERVED": "yellow",
    "NOT_APPLICABLE": "dim",
    "BROKEN": "red",
}


class ProgressPlugin:
    """Receives every scenario's report (from xdist workers too) and drives the display."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("scenarios", total=None)
        self.collected = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)
        self.progress.update(self.task, total=len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected = len(ids)
        self.progress.update(self.task, total=len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            name = report.nodeid.split("::")[-1]
            self.progress.advance(self.task)
            colour = "green" if report.passed else "red"
            self.progress.console.print(
                f"[{colour}]{report.outcome.upper():7}[/] {name} ({report.duration:.1f} s)"
            )
            if report.skipped and isinstance(report.longrepr, tuple):
                # Never silently: a skip says why (e.g. no packet backend on this machine).
                self.progress.console.print(f"        {report.longrepr[2]}")


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


# Given the console, the suite's report and its directory, prints a summary and returns the
# exit status (`harness certify` grades the testee this way instead of the suite summary).
Finish = Callable[[Console, dict[str, Any], Path], int]


def run_suite(
    args: argparse.Namespace,
    files: list[Path],
    *,
    extra_args: Sequence[str] = (),
    title: str = "harness run",
    finish: Finish | None = None,
) -> int:
    as_json = bool(getattr(args, "json", False))
    # With --json, stdout carries only the summary; the people-facing output goes to stderr.
    console = Console(stderr=as_json, soft_wrap=not sys.stdout.isatty())
    run_id = _run_id()
    run_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else DEFAULT_SEED
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    os.environ[RUN_ID_ENV] = run_id
    os.environ[SEED_ENV] = str(seed)
    junit = Path(args.junit) if args.junit else run_dir / "junit.xml"
    pytest_args = [
        *map(str, files),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "--lvs-seed",
        str(seed),
        "--lvs-run-dir",
        str(run_dir),
        "--lvs-junit",
        str(junit),
        "-o",
        "testpaths=",
        *extra_args,
    ]
    workers = choose_workers(args.workers, len(files))
    if workers:
        order = "longest-first" if args.schedule == "longest-first" else "file"
        pytest_args += ["-n", str(workers), "--lvs-order", order]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    console.print(
        f"[bold]{title}[/] {run_id}: seed {seed}, {workers or 'no'} workers, reports in {run_dir}",
        soft_wrap=True,
    )
    started = time.time()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        plugin = ProgressPlugin(progress)
        status = pytest.main(pytest_args, plugins=[plugin])
    if status in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        console.print(
            f"[red]pytest could not run the suite ({pytest.ExitCode(status).name}); arguments: "
            f"{' '.join(pytest_args)}[/]",
            soft_wrap=True,
        )
        return int(status)
    report_path = run_dir / "report.json"
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    if finish is not None:
        return finish(console, report, run_dir)
    if not report["scenarios"] and not report["broken_files"] and not report["run"]["interrupted"]:
        what = f"-k {args.keyword!r} matched none of them" if args.keyword else "none collected"
        console.print(
            f"[red]no scenarios run[/]: {len(files)} scenario file(s) given, {what}",
            soft_wrap=True,
        )
        return int(pytest.ExitCode.NO_TESTS_COLLECTED)
    print_summary(console, report)
    totals = report["totals"]
    console.print(
        f"reports: {run_dir}/report.json, report.html, {junit} "
        f"({totals['passed']}/{totals['scenarios']} passed, "
        f"{time.time() - started:.1f} s wall)",
        soft_wrap=True,
    )
    if report["run"]["interrupted"]:
        console.print("[red]the run was interrupted: the report covers only what finished[/]")
    if as_json:
        print(json.dumps(json_summary(report, run_dir, junit), indent=2))
    if report["run"]["interrupted"]:
        return int(pytest.ExitCode.INTERRUPTED)
    return 0 if report["outcome"] == "PASS" else int(pytest.ExitCode.TESTS_FAILED)


def choose_workers(requested: str, scenarios: int) -> int:
    """xdist workers: a number, `0` for none, or `auto` (see docs/scenarios.md, "Speed")."""
    if requested != "auto":
        return int(requested)
    per_core = 4  # scenarios wait on protocol timers, not on the CPU
    return max(1, min(scenarios, per_core * (os.cpu_count() or 1)))


def json_summary(report: dict[str, Any], run_dir: Path, junit: Path) -> dict[str, Any]:
    return {
        "schema_version": report["schema_version"],
        "outcome": report["outcome"],
        "run": {k: report["run"][k] for k in ("id", "seed", "started", "duration", "interrupted")},
        "report_dir": str(run_dir),
        "junit": str(junit),
        "totals": report["totals"],
        "scenarios": [
            {"name": s["name"], "verdict": s["verdict"], "duration": s["duration"]}
            for s in report["scenarios"]
        ],
        "broken_files": [b["file"] for b in report["broken_files"]],
        "requirements": {k: v["verdict"] for k, v in report["requirements"].items()},
    }


def _badge(verdict: str) -> str:
    return f"[{VERDICT_COLOURS.get(verdict, 'red')}]{verdict}[/]"


def print_summary(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="Scenario results")
    table.add_column("Scenario", style="bold")
    table.add_column("Requirements", overflow="fold")
    table.add_column("Verdict")
    table.add_column("Duration", justify="right")
    for result in report["scenarios"]:
        statuses = {r["requirement"]: r["status"] for r in result["requirements"]}
        reqs = " ".join(
            f"[{VERDICT_COLOURS[statuses[r]]}]{r}[/]" if statuses.get(r, "PASS") != "PASS" else r
            for r in result["covers"]
        )
        duration = result["duration"]
        table.add_row(
            result["name"],
            reqs,
            _badge(result["verdict"]),
            f"{duration:.1f} s" if isinstance(duration, int | float) else "-",
        )
    for item in report["broken_files"]:
        table.add_row(item["file"], "", _badge("BROKEN"), "-")
    console.print(table)
    rolled: dict[str, list[str]] = {}
    for rid, entry in report["requirements"].items():
        rolled.setdefault(entry["verdict"], []).append(rid)
    console.print(
        "requirements: "
        + ", ".join(f"{_badge(v)} {len(ids)}" for v, ids in sorted(rolled.items())),
        soft_wrap=True,
    )
    for verdict in ("FAIL", "INCONCLUSIVE"):
        if rolled.get(verdict):
            console.print(f"  {_badge(verdict)}: {' '.join(rolled[verdict])}", soft_wrap=True)
    for result in report["scenarios"]:
        for failure in result["failures"]:
            console.print(f"[red]{result['name']}[/]: {failure}", soft_wrap=True)
    for item in report["broken_files"]:
        first = (str(item["error"]).splitlines() or [""])[0]
        console.print(f"[red]broken[/] {item['file']}: {first}", soft_wrap=True)
