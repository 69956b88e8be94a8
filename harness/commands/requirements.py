"""`harness requirements`: the requirement catalogue, with scenario coverage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reference.protocol.requirements import CATALOGUE


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        help="folder of scenario files whose coverage to show "
        "(default: ./scenarios, else the packaged suite)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def coverage(folder: Path) -> dict[str, list[str]]:
    """Requirement ID -> names of the scenarios that declare it."""
    try:
        from harness.scenarios.loader import declared_coverage
    except ImportError:
        return {}
    found: dict[str, list[str]] = declared_coverage(folder)
    return found


def monitors() -> dict[str, str]:
    """Requirement ID -> where its monitor lives (`path:Class`)."""
    from harness.checks.doc import monitor_file
    from harness.checks.engine import Engine
    from harness.checks.monitor import MONITORS

    Engine({})  # registers every monitor
    return {rid: f"{monitor_file(cls)}:{cls.__qualname__}" for rid, cls in MONITORS.items()}


def run(args: argparse.Namespace) -> int:
    from harness.scenarios.suite_location import default_suite

    folder = args.scenarios if args.scenarios is not None else default_suite()
    covered = coverage(folder) if folder is not None else {}
    where = monitors()
    if args.json:
        rows = [
            {
                "id": r.id,
                "group": r.group,
                "level": r.level.value,
                "side": r.side.value,
                "observed": r.observed.value,
                "rule": r.rule,
                "scenarios": covered.get(r.id, []),
                "monitor": where.get(r.id),
            }
            for r in CATALOGUE
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"LVS requirement catalogue ({len(CATALOGUE)} rules)", show_lines=False)
    table.add_column("ID", style="bold cyan", no_wrap=True)
    table.add_column("Level")
    table.add_column("Side")
    table.add_column("Observed on")
    table.add_column("Rule")
    table.add_column("Scenarios", overflow="fold")
    table.add_column("Monitor", overflow="fold")
    for r in CATALOGUE:
        names = covered.get(r.id, [])
        table.add_row(
            r.id,
            r.level.value,
            r.side.value,
            r.observed.value,
            r.rule,
            ", ".join(names) if names else "[red]none[/red]",
            where.get(r.id, "[red]none[/red]"),
        )
    Console().print(table)
    return 0
