"""The checkers speak the protocol core's vocabulary, and their documentation is printed from them.

A state or message name spelled as a string in a checker is a verdict waiting to
go silently wrong: a typo makes a comparison always false, so a rule turns into
PASS or NOT_OBSERVED. Every name comes from reference/protocol instead.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from harness.checks import doc
from harness.checks.engine import Engine
from harness.checks.monitor import MONITORS
from reference.protocol.frames import FrameType
from reference.protocol.messages import BY_NAME, StreamEvent
from reference.protocol.states import PrimaryConnectionState, StreamState, ViewerState

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "harness" / "checks"

PROTOCOL_NAMES = (
    {s.value for s in ViewerState}
    | {s.name for s in StreamState}
    | {s.value for s in PrimaryConnectionState}
    | set(BY_NAME)
    | {t.name for t in FrameType}
    | {e.value for e in StreamEvent}
)


def literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in PROTOCOL_NAMES
    ]


def test_no_state_or_message_name_is_spelled_in_the_checkers() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in sorted(CHECKS.rglob("*.py"))
        for line, value in literals(path)
    ]
    assert not found, "use the protocol core's enums and classes:\n" + "\n".join(found)


def test_the_scan_finds_a_spelled_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('if state == "STREAMING":\n    pass\nname = "HEARTBEAT"\n')
    assert sorted(literals(sample)) == [(1, "STREAMING"), (3, "HEARTBEAT")]


def test_every_monitor_explains_how_it_reads_its_rule() -> None:
    Engine({})
    for requirement, cls in MONITORS.items():
        text = inspect.cleandoc(cls.__doc__ or "")
        assert text.startswith(requirement), f"{cls.__name__}: docstring starts with its ID"
        assert len(text.splitlines()) >= 4, f"{requirement}: say how the rule is read"


def test_checks_md_is_printed_from_the_monitors() -> None:
    on_disk = (ROOT / "reference" / "CHECKS.md").read_text()
    assert on_disk == doc.render(), f"reference/CHECKS.md is stale: {doc.COMMAND}"
