"""The frame faults, one per module, and `make_fault` for scenario-file specs.

A spec is the mapping a scenario writes under `do: fault`: `type` names the
fault, every other key is a field of its class (docs/frame-faults.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.chaos.faults.base import Fault, FaultSpecError
from harness.chaos.faults.corrupt import CorruptFault
from harness.chaos.faults.delay import DelayFault
from harness.chaos.faults.drop import DropFault
from harness.chaos.faults.duplicate import DuplicateFault
from harness.chaos.faults.inject import InjectFault
from harness.chaos.faults.reorder import ReorderFault
from harness.chaos.faults.stale_epoch import StaleEpochFault
from harness.chaos.faults.stall import StallFault
from harness.chaos.faults.truncate import TruncateFault

FAULTS: dict[str, type[Fault]] = {
    cls.type_name: cls
    for cls in (
        DropFault,
        DelayFault,
        ReorderFault,
        DuplicateFault,
        StaleEpochFault,
        CorruptFault,
        TruncateFault,
        StallFault,
        InjectFault,
    )
}


def make_fault(spec: Mapping[str, Any]) -> Fault:
    """A fault from its scenario spec; FaultSpecError (a ValueError) names what is wrong."""
    if not isinstance(spec, Mapping):
        raise FaultSpecError(f"a frame fault is a mapping with a 'type', got {spec!r}")
    params = dict(spec)
    kind = params.pop("type", None)
    known = ", ".join(FAULTS)
    if kind is None:
        raise FaultSpecError(f"a frame fault needs a 'type' (one of: {known})")
    cls = FAULTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FaultSpecError(f"unknown frame fault type {kind!r} (one of: {known})")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = {f.name for f in fields}
    unknown = sorted(str(k) for k in params if k not in names)
    if unknown:
        raise FaultSpecError(
            f"{kind}: unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)} ({kind} takes: {', '.join(sorted(names))})"
        )
    missing = [
        f.name
        for f in fields
        if f.name not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise FaultSpecError(
            f"{kind}: missing parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}"
        )
    return cls(**params)


__all__ = [
    "FAULTS",
    "CorruptFault",
    "DelayFault",
    "DropFault",
    "DuplicateFault",
    "Fault",
    "FaultSpecError",
    "InjectFault",
    "ReorderFault",
    "StaleEpochFault",
    "StallFault",
    "TruncateFault",
    "make_fault",
]
