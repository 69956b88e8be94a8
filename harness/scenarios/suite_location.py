"""Where the scenario suite is: ./scenarios when there is one, else the copy in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LOCAL_SUITE = Path("scenarios")
PACKAGED_SUITE = "harness.suite"  # the top-level scenarios/ folder, shipped as package data


def packaged_suite() -> Path | None:
    try:
        folder = resources.files(PACKAGED_SUITE)
    except ModuleNotFoundError:
        return None
    path = Path(str(folder))
    return path if path.is_dir() and any(path.glob("*.yaml")) else None


def default_suite() -> Path | None:
    return LOCAL_SUITE if LOCAL_SUITE.is_dir() else packaged_suite()
