"""Every requirement's verdict from one trace: `run_checks(records, {ID: params})`.

The online engine (`harness.checks.engine`) is fed the records in the order they
were written; the same call serves a scenario after its run and `harness check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.checks.engine import check_records
from harness.checks.verdict import Verdict
from harness.trace import Record
from reference.protocol.timings import DEFAULT_TIMINGS, Timings


def run_checks(
    records: Iterable[Record],
    requested: Mapping[str, Mapping[str, Any] | None],
    timings: Timings = DEFAULT_TIMINGS,
) -> list[Verdict]:
    return check_records(records, requested, timings)
