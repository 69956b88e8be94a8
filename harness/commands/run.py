"""`harness run`: the scenario suite, the project's main job."""

from __future__ import annotations

import argparse
from pathlib import Path

# pytest's exit-status conventions: nothing usable given (4), nothing collected (5).
USAGE_ERROR, NO_TESTS_COLLECTED = 4, 5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="scenario files or folders of them (default: ./scenarios, else the packaged suite)",
    )
    parser.add_argument("-k", dest="keyword", default=None, help="only scenarios matching EXPR")
    parser.add_argument(
        "-n", dest="workers", default="auto", help="parallel workers (default auto, 0 for none)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for every random fault")
    parser.add_argument(
        "--schedule",
        choices=("xdist", "longest-first"),
        default="xdist",
        help="how workers get scenarios: xdist's load scheduling (default) or longest first "
        "(see docs/scenarios.md, Speed)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where traces, pcaps and the reports go (default reports/<run-id>)",
    )
    parser.add_argument(
        "--junit", type=Path, default=None, help="where junit.xml goes (default: the report dir)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run's summary as JSON on stdout"
    )


def scenario_paths(paths: list[Path]) -> tuple[list[Path], str | None]:
    """The scenario files to run, or the one-line reason there are none."""
    from harness.scenarios.loader import scenario_files
    from harness.scenarios.suite_location import default_suite

    if not paths:
        suite = default_suite()
        if suite is None:
            return [], "no ./scenarios folder and no packaged suite: name scenario files to run"
        paths = [suite]
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            return [], f"{path}: no such file or folder"
        if path.is_file() and path.suffix not in (".yaml", ".yml"):
            return [], f"{path}: not a scenario file (scenarios are *.yaml with `lvs: 2`)"
        found = scenario_files([path]) if path.is_dir() else [path]
        if not found:
            return [], f"{path}: holds no scenario files (*.yaml with `lvs: 2`)"
        files += found
    return files, None


def run(args: argparse.Namespace) -> int:
    files, problem = scenario_paths(list(args.paths))
    if problem is not None:
        print(f"harness run: {problem}")
        return USAGE_ERROR if args.paths else NO_TESTS_COLLECTED
    from harness.scenarios.suite import run_suite

    return run_suite(args, files)
