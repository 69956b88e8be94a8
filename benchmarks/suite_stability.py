"""Run the scenario suite N times and compare verdicts: is the suite deterministic?

    python benchmarks/suite_stability.py [--runs 10] [--seed 1] [-- extra harness run args]

Each run is a plain `harness run`; its report.json gives every scenario's verdict
and every requirement's verdict. The script prints one row per run and the list
of verdicts that differed from the first run (none, for a stable suite).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def latest_report(before: set[Path]) -> dict[str, Any]:
    runs = sorted(set(Path("reports").glob("2*/report.json")) - before)
    if not runs:
        raise RuntimeError("harness run wrote no report.json")
    report: dict[str, Any] = json.loads(runs[-1].read_text())
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="more arguments for harness run")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"harness run x{args.runs}, seed {args.seed}")
    for column in ("run", "exit", "wall s", "passed", "failed", "failures"):
        table.add_column(column)
    first: dict[str, str] | None = None
    differences: list[str] = []
    for number in range(1, args.runs + 1):
        before = set(Path("reports").glob("2*/report.json"))
        started = time.monotonic()
        status = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--seed", str(args.seed), *args.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        ).returncode
        wall = time.monotonic() - started
        report = latest_report(before)
        verdicts = {f"scenario {s['name']}": s["verdict"] for s in report["scenarios"]}
        verdicts |= {f"requirement {k}": v["verdict"] for k, v in report["requirements"].items()}
        if first is None:
            first = verdicts
        differences += [
            f"run {number}: {k} {first.get(k)} -> {v}"
            for k, v in verdicts.items()
            if first.get(k) != v
        ]
        failures = "; ".join(
            f"{s['name']}: {s['failures'][0]}" for s in report["scenarios"] if s["failures"]
        )
        table.add_row(
            str(number),
            str(status),
            f"{wall:.1f}",
            str(report["totals"]["passed"]),
            str(report["totals"]["failed"]),
            failures[:80],
        )
    console.print(table)
    if differences:
        console.print("[red]verdicts that differed from run 1:[/]")
        for line in differences:
            console.print(f"  {line}")
        return 1
    console.print(f"all {args.runs} runs gave the same verdicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
