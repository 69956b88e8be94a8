"""Trace conditions: what a `wait` step waits for, matched against live trace records."""

from __future__ import annotations

from typing import Any

from harness.trace import Record

_FRAME_KEYS = {"tap", "dir", "message"}
# A wait's text saying it checks that the situation the scenario needs arose: not a
# field to match (docs/scenarios.md, "Situation waits").
SITUATION = "situation"
_NOT_FIELDS = ("count", "since", SITUATION)


def matches(condition: dict[str, Any], record: Record) -> bool:
    """True when `record` has every field the condition names (count/since/situation aside)."""
    wanted = {k: v for k, v in condition.items() if k not in _NOT_FIELDS}
    kind = record.get("kind")
    if wanted.keys() & _FRAME_KEYS:
        if kind != "frame":
            return False
        tap = wanted.get("tap")
        if (
            tap is not None
            and record.get("tap") != tap
            and not str(record.get("tap", "")).startswith(f"{tap}:")
        ):
            return False
        if "dir" in wanted and record.get("dir") != wanted["dir"]:
            return False
        message = wanted.get("message")
        if message is not None and str(record.get("msg", "")).split("|")[0] != message:
            return False
        return all(record.get(k) == v for k, v in wanted.items() if k not in _FRAME_KEYS)
    if "stream_state" in wanted:
        return kind == "primary" and all(record.get(k) == v for k, v in wanted.items())
    if kind != "telemetry":
        return False
    if "state" in wanted and record.get("event") != "state":
        return False
    return all(record.get(k) == v for k, v in wanted.items())


def describe(condition: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in condition.items() if k not in _NOT_FIELDS]
    count = condition.get("count", 1)
    return " ".join(parts) + (f" x{count}" if count != 1 else "")
