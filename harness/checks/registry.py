"""Every checker, importable in one place: `run_checks(trace, {ID: params})`."""

from __future__ import annotations

from typing import Any

from harness.checks import authority, epochs, handshake, timing  # noqa: F401  (registration)
from harness.checks.context import CHECKS, CheckContext
from harness.checks.verdict import Verdict, not_observed
from harness.trace import Trace
from reference.protocol.timings import DEFAULT_TIMINGS, Timings


def run_checks(
    trace: Trace, requested: dict[str, dict[str, Any]], timings: Timings = DEFAULT_TIMINGS
) -> list[Verdict]:
    verdicts = []
    for requirement, params in requested.items():
        checker = CHECKS.get(requirement)
        if checker is None:
            verdicts.append(not_observed(requirement, f"no checker for {requirement}"))
            continue
        verdicts.append(checker(CheckContext(trace, dict(params or {}), timings)))
    return verdicts
