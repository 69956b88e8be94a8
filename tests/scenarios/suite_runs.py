"""Helpers for tests that run `harness run` / pytest as a real subprocess on this checkout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# About a second: one raw client sends a malformed frame and the Primary must cope.
FAST = (
    "lvs: 2\ncovers: [FRAME-1]\nexpect: {FRAME-1: {}}\ntimeline:\n"
    "  - do: raw\n    with: {send: [{malformed: length_uint32_max}]}\n"
)


def holding(seconds: float, timeout: float = 60) -> str:
    """A scenario that streams to one Viewer, then holds for `seconds`."""
    return (
        f"lvs: 2\ncovers: [HB-1]\nexpect: {{HB-1: {{}}}}\ntimeout: {timeout:g}\n"
        "viewers:\n  - id: v1\ntimeline:\n  - wait: {viewer: v1, state: STREAMING}\n"
        f"    within: 10\n  - hold: {seconds:g}\n"
    )


@contextlib.contextmanager
def sigint_delivered() -> Iterator[None]:
    """Children started inside take SIGINT as Ctrl-C even where this process ignores it.

    A background job of a non-interactive shell (`cmd &` in a script) starts with SIGINT
    ignored, children inherit that, and Python then installs no KeyboardInterrupt handler:
    a test that interrupts a run would wait for nothing. A handled signal is reset to its
    default when the child starts, so the child gets Python's usual handler.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def env() -> dict[str, str]:
    """This checkout's code first, whatever the installed package is."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
    return {**inherited, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def harness(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env(),
    )


def pytest_run(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "testpaths=", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env(),
    )


def report(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "report.json").read_text())
    return loaded
