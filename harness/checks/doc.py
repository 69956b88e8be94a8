"""Render reference/CHECKS.md from the monitors themselves, so the document cannot drift.

    python -m harness.checks.doc > reference/CHECKS.md

For every catalogue ID: the rule as PROTOCOL.md states it, which peer it binds,
what evidence decides it, the monitor that judges it (module and class) and the
monitor's own account of how it reads the rule: its docstring.
"""

from __future__ import annotations

import inspect

from harness.checks.engine import Engine
from harness.checks.monitor import MONITORS, Monitor
from reference.protocol.requirements import CATALOGUE

COMMAND = "python -m harness.checks.doc > reference/CHECKS.md"


def monitor_location(cls: type[Monitor]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def monitor_file(cls: type[Monitor]) -> str:
    return f"harness/checks/monitors/{cls.__module__.rsplit('.', 1)[-1]}.py"


def render() -> str:
    Engine({})  # registers every monitor
    lines = [
        "# How each requirement is checked",
        "",
        f"Printed from the monitors' docstrings by `{COMMAND}`; a test fails when it is stale.",
        "Each monitor is fed the trace record by record, in wire order within a connection",
        "(harness/checks/engine.py); its docstring says how it reads its rule, what counts as",
        "evidence, and the windows and tolerances it allows and where they come from",
        "(reference/protocol/timings.py; the default tolerance is 0.3 s, PROTOCOL.md section 10).",
        "Upper time limits count only the time the peers could run: the CPU wait a trace's",
        "`cpu_wait` records measure inside a window lengthens it (PROTOCOL.md 10.1).",
        "",
        "| ID | level | binds | observed on | monitor |",
        "|---|---|---|---|---|",
    ]
    for req in CATALOGUE:
        cls = MONITORS.get(req.id)
        where = f"`{monitor_location(cls)}`" if cls else "**none**"
        lines.append(f"| [{req.id}](#{req.id.lower()}) | {req.level.value} | "
                     f"{req.side.value} | {req.observed.value} | {where} |")
    for req in CATALOGUE:
        cls = MONITORS.get(req.id)
        rule = f"**Rule** ({req.group}, {req.level.value}): {req.rule}"
        lines += ["", f"## {req.id}", "", rule, ""]
        if cls is None:
            lines.append("No monitor judges this rule.")
            continue
        lines.append(f"**Monitor**: `{monitor_location(cls)}` in `{monitor_file(cls)}`")
        lines.append("")
        doc = inspect.cleandoc(cls.__doc__ or "")
        body = doc.split("\n", 1)[1].strip() if "\n" in doc else ""
        lines.append(body or "(the monitor has no description)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
