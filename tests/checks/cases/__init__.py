"""A minimal conforming trace and its one-fault twin for every requirement ID.

Each group module holds `CASES: {ID: case}`; a case is a function taking
`broken` and returning a builder `Trace`: the same situation, conforming when
`broken` is false and breaking exactly that rule when it is true. `PARAMS`
gives per-ID monitor parameters where a rule needs them (a secret, say).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from tests.checks.builder import Trace

Case = Callable[[bool], Trace]


def all_cases() -> tuple[dict[str, Case], dict[str, dict[str, Any]]]:
    cases: dict[str, Case] = {}
    params: dict[str, dict[str, Any]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for requirement, case in getattr(module, "CASES", {}).items():
            if requirement in cases:
                raise RuntimeError(f"two cases for {requirement}")
            cases[requirement] = case
        params.update(getattr(module, "PARAMS", {}))
    return cases, params
