"""What a checker is given, and the registry that maps requirement IDs to checkers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.checks.verdict import Verdict
from harness.trace import Trace
from reference.protocol.timings import DEFAULT_TIMINGS, Timings


@dataclass
class CheckContext:
    trace: Trace
    params: dict[str, Any] = field(default_factory=dict)
    timings: Timings = DEFAULT_TIMINGS

    @property
    def tolerance(self) -> float:
        """Slack for timing rules: scheduling and loopback jitter on a loaded 2-core host."""
        return float(self.params.get("tolerance", 0.3))

    def param(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)


Checker = Callable[[CheckContext], Verdict]
CHECKS: dict[str, Checker] = {}


def rule(requirement: str) -> Callable[[Checker], Checker]:
    def register(fn: Checker) -> Checker:
        if requirement in CHECKS:
            raise RuntimeError(f"two checkers for {requirement}")
        CHECKS[requirement] = fn
        return fn

    return register
