"""Short soaks for the tests: seconds, not hours, with timings scaled to match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.soak.profile import Profile, profile_from_dict
from harness.soak.run import SoakResult, run_soak

# A reconnect storm every 1.5 s over eight header-only Viewers: about 1.3 connects a
# second, so the planted leak (1 MiB per connect) grows the Viewer process by ~4.7 GB/h,
# while the reference Viewers stay within tens of MB/h once warm. The limit sits between,
# a factor of ten from each.
CHURN: dict[str, Any] = {
    "duration": 18,
    "viewers": 8,
    "decoding": 0,
    "late_joiners": 0,
    "window": 6,
    "sample_interval": 0.5,
    "path": [],
    "nemesis": {
        "every": 1.5,
        "start_after": 2,
        "faults": {"reconnect_storm": {"weight": 1, "duration": [0.2, 0.5]}},
    },
    "drift": {
        "warmup": 5,
        "min_samples": 10,
        "limits": [{"metric": "viewers.rss_mb", "max_per_h": 500}],
    },
}


def churn_profile(**overrides: Any) -> Profile:
    return profile_from_dict("churn", {**CHURN, **overrides})


def soak(profile: Profile, directory: Path, seed: int) -> SoakResult:
    from harness.soak.report import write_reports

    result = run_soak(profile, directory, seed)
    write_reports(result)
    return result


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory: pytest.TempPathFactory) -> list[SoakResult]:
    """Two soaks of the reference peers with the same seed."""
    return [soak(churn_profile(), tmp_path_factory.mktemp(f"ref{i}"), 5) for i in range(2)]
