"""`harness run`: the scenario suite, the project's main job."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("scenarios")],
        metavar="PATH",
        help="scenario files, or folders of them (default: scenarios)",
    )
    parser.add_argument("-k", dest="keyword", default=None, help="only scenarios matching EXPR")
    parser.add_argument("-n", dest="workers", default="auto", help="parallel workers")
    parser.add_argument("--seed", type=int, default=None, help="seed for every random fault")


def run(args: argparse.Namespace) -> int:
    files = [
        p
        for path in args.paths
        for p in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])
        if p.exists()
    ]
    if not files:
        print("no scenarios yet: nothing to run (scenario files go in scenarios/*.yaml)")
        return 0
    from harness.scenarios.suite import run_suite

    status: int = run_suite(args)
    return status
