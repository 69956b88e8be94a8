"""`harness run`: the scenario suite through pytest (and xdist), with a rich front end."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.pytest_plugin import DEFAULT_SEED, RUN_DIR_ENV, SEED_ENV


class ProgressPlugin:
    """Receives every scenario's report (from xdist workers too) and drives the display."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("scenarios", total=None)
        self.outcomes: dict[str, dict[str, Any]] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.update(self.task, total=len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.progress.update(self.task, total=len(ids))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes[str(report.nodeid)] = {"outcome": "error", "text": str(report.longrepr)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            name = report.nodeid.split("::")[-1]
            self.outcomes[name] = {
                "outcome": report.outcome,
                "duration": report.duration,
                "text": str(report.longrepr) if report.failed else "",
            }
            self.progress.advance(self.task)
            colour = "green" if report.passed else "red"
            self.progress.console.print(
                f"[{colour}]{report.outcome.upper():7}[/] {name} ({report.duration:.1f} s)"
            )


def run_suite(args: argparse.Namespace) -> int:
    console = Console()
    run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    run_dir = Path("reports") / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else DEFAULT_SEED
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    os.environ[SEED_ENV] = str(seed)
    pytest_args = [
        *map(str, args.paths),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "--junitxml",
        str(run_dir / "junit.xml"),
        "--lvs-seed",
        str(seed),
        "-o",
        "junit_family=xunit2",
        "-o",
        "testpaths=",
    ]
    if args.workers and args.workers != "0":
        pytest_args += ["-n", str(args.workers)]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    console.print(f"[bold]harness run[/] {run_id}: seed {seed}, reports in {run_dir}")
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
            f"{' '.join(pytest_args)}[/]"
        )
        return 2
    broken = [
        {"file": k, "error": v["text"]}
        for k, v in plugin.outcomes.items()
        if v["outcome"] == "error"
    ]
    from harness.report.html import write_html
    from harness.report.summary import write_report

    report = write_report(run_dir, run_id=run_id, seed=seed, started=started, broken=broken)
    write_html(run_dir, report)
    print_summary(console, report, plugin.outcomes)
    console.print(
        f"reports: {run_dir}/report.json, report.html, junit.xml "
        f"({report['totals']['passed']}/{report['totals']['scenarios']} passed, "
        f"{time.time() - started:.1f} s wall)"
    )
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        console.print("no scenarios matched")
        return 0
    return 0 if report["totals"]["failed"] == 0 and status == 0 else 1


def print_summary(
    console: Console, report: dict[str, Any], outcomes: dict[str, dict[str, Any]]
) -> None:
    table = Table(title="Scenario results")
    table.add_column("Scenario", style="bold")
    table.add_column("Requirements", overflow="fold")
    table.add_column("Verdict")
    table.add_column("Duration", justify="right")
    for result in report["scenarios"]:
        colour = "green" if result["verdict"] == "PASS" else "red"
        failing = {f.split()[0] for f in result["failures"]}
        reqs = " ".join(f"[red]{r}[/]" if r in failing else r for r in result["covers"])
        table.add_row(
            result["name"], reqs, f"[{colour}]{result['verdict']}[/]", f"{result['duration']:.1f} s"
        )
    for item in report["broken_files"]:
        table.add_row(item["file"], "", "[red]BROKEN[/]", "-")
    console.print(table)
    for result in report["scenarios"]:
        for failure in result["failures"]:
            console.print(f"[red]{result['name']}[/]: {failure}")
