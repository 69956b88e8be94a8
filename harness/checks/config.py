"""What a set of verdicts was computed with: requested IDs, their parameters, the timings.

A scenario's result.json stores it, so that `harness check` computes the same
verdicts from the stored trace as the live run did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from reference.protocol.timings import DEFAULT_TIMINGS, Timings


def check_config(
    requested: Mapping[str, Mapping[str, Any] | None], timings: Timings
) -> dict[str, Any]:
    return {
        "requested": {rid: dict(params or {}) for rid, params in requested.items()},
        "timings": dataclasses.asdict(timings),
    }


def timings_from(config: Mapping[str, Any]) -> Timings:
    raw = dict(config.get("timings") or {})
    if not raw:
        return DEFAULT_TIMINGS
    if "stall_window" in raw:
        raw["stall_window"] = tuple(raw["stall_window"])
    known = {f.name for f in dataclasses.fields(Timings)}
    return Timings(**{k: v for k, v in raw.items() if k in known})
