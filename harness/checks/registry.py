"""Every checker, importable in one place: `run_checks(trace, {ID: params})`.

Requirements with a monitor (harness.checks.monitors) are judged by the online
engine; the others still by their batch checker until every one is ported.
"""

from __future__ import annotations

from typing import Any

from harness.checks import authority, epochs, handshake, timing  # noqa: F401  (registration)
from harness.checks.context import CHECKS, CheckContext
from harness.checks.engine import Engine
from harness.checks.monitor import MONITORS
from harness.checks.verdict import Verdict, not_observed
from harness.trace import Trace
from reference.protocol.timings import DEFAULT_TIMINGS, Timings


def run_checks(
    trace: Trace, requested: dict[str, dict[str, Any]], timings: Timings = DEFAULT_TIMINGS
) -> list[Verdict]:
    engine = Engine({}, timings)  # imports and registers the monitors
    online = {r: p for r, p in requested.items() if r in MONITORS}
    engine = Engine(online, timings).feed_all(trace.records)
    by_id = {v.requirement: v for v in engine.finish()}
    verdicts = []
    for requirement, params in requested.items():
        if requirement in by_id:
            verdicts.append(by_id[requirement])
            continue
        checker = CHECKS.get(requirement)
        if checker is None:
            verdicts.append(not_observed(requirement, f"no checker for {requirement}"))
            continue
        verdicts.append(checker(CheckContext(trace, dict(params or {}), timings)))
    return verdicts
