"""Where the scenario suite is: ./scenarios when there is one, else the copy in the package.

A wheel carries the top-level `scenarios/` folder as the package `harness.suite`
(pyproject.toml's package-dir); a source checkout has it beside `harness/`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

LOCAL_SUITE = Path("scenarios")
PACKAGED_SUITE = "harness.suite"


def _has_scenarios(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.yaml"))


def packaged_suite() -> Path | None:
    """The suite that came with the installed package (or the checkout it runs from)."""
    spec = importlib.util.find_spec(PACKAGED_SUITE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    checkout = Path(__file__).resolve().parents[2] / "scenarios"
    for folder in [*map(Path, locations), checkout]:
        if _has_scenarios(folder):
            return folder
    return None


def default_suite() -> Path | None:
    return LOCAL_SUITE if LOCAL_SUITE.is_dir() else packaged_suite()
