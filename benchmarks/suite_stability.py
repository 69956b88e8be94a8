"""Run the scenario suite N times: are the verdicts stable, and how does the wall time
compare with the longest scenario?

    python benchmarks/suite_stability.py [--runs 10] [--seed 1] [--load] [-- extra run args]

Each run is a plain `harness run` (default workers and scheduling unless the extra
arguments say otherwise) writing into its own report directory. The script prints one row
per run: exit status, wall time, the longest scenario's duration, their ratio (target: the
suite within 1.5x its longest scenario), and the list of verdicts that differed from the
first run (none, for a stable suite). The machine's load average before each run is shown
too: on a shared machine, timings mean little without it.

With `--load`, one CPU burner per core (`python -c 'while 1: pass'`) runs for the whole
measurement: verdicts must not change when every core is busy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_RATIO = 1.5


def run_once(seed: int, extra: list[str], report_dir: Path) -> tuple[int, float, dict[str, Any]]:
    started = time.monotonic()
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--seed",
            str(seed),
            "--report-dir",
            str(report_dir),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    ).returncode
    wall = time.monotonic() - started
    path = report_dir / "report.json"
    if not path.exists():
        raise RuntimeError(f"harness run wrote no report.json (exit {status})")
    report: dict[str, Any] = json.loads(path.read_text())
    return status, wall, report


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    """`count` processes that each keep one core busy until the block ends."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--load", action="store_true", help="keep every core busy with a CPU burner meanwhile"
    )
    parser.add_argument("extra", nargs="*", help="more arguments for harness run")
    args = parser.parse_args()
    console = Console()
    burning = (os.cpu_count() or 1) if args.load else 0
    loaded = f", {burning} CPU burner(s)" if burning else ""
    table = Table(
        title=f"harness run x{args.runs}, seed {args.seed}{loaded} {' '.join(args.extra)}"
    )
    for column in (
        "run",
        "load",
        "exit",
        "wall s",
        "longest s",
        "wall/longest",
        "passed",
        "failed",
        "failures",
    ):
        table.add_column(column)
    first: dict[str, str] | None = None
    differences: list[str] = []
    ratios: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="suite-stability-") as scratch,
        cpu_burners(burning),
    ):
        for number in range(1, args.runs + 1):
            load = os.getloadavg()[0]
            status, wall, report = run_once(args.seed, args.extra, Path(scratch) / str(number))
            verdicts = {f"scenario {s['name']}": s["verdict"] for s in report["scenarios"]}
            verdicts |= {
                f"requirement {k}": v["verdict"] for k, v in report["requirements"].items()
            }
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
            longest = max((s["duration"] for s in report["scenarios"]), default=0.0)
            ratio = wall / longest if longest else float("inf")
            ratios.append(ratio)
            # Each run's line as soon as it is known: a long measurement can be read as it goes.
            print(
                f"run {number}: load {load:.1f} exit {status} wall {wall:.1f} s "
                f"longest {longest:.1f} s ratio {ratio:.2f} "
                f"differences so far {len(differences)}",
                flush=True,
            )
            table.add_row(
                str(number),
                f"{load:.1f}",
                str(status),
                f"{wall:.1f}",
                f"{longest:.1f}",
                f"{ratio:.2f}",
                str(report["totals"]["passed"]),
                str(report["totals"]["failed"] + report["totals"]["errors"]),
                failures[:80],
            )
    console.print(table)
    ratios.sort()
    console.print(
        f"wall/longest: median {ratios[len(ratios) // 2]:.2f}, best {ratios[0]:.2f} "
        f"(target {TARGET_RATIO}); {os.cpu_count()} cores, load average before each run shown"
    )
    if differences:
        console.print("[red]verdicts that differed from run 1:[/]")
        for line in differences:
            console.print(f"  {line}")
        return 1
    console.print(f"all {args.runs} runs gave the same verdicts{loaded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
