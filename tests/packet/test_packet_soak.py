"""The packet hop in a soak: a profile puts `packet` on the path and the nemesis draws
`impair` steps for it (loss, delay, jitter, duplicates), each cleared at its end."""

from __future__ import annotations

from pathlib import Path

import pytest
from packet_support import USERSPACE

from harness.soak.nemesis import draw_schedule
from harness.soak.profile import profile_from_dict
from harness.soak.run import run_soak

PROFILE = {
    "duration": 16,
    "viewers": 3,
    "decoding": 0,
    "late_joiners": 0,
    "window": 8,
    "sample_interval": 1,
    "path": ["packet"],
    "nemesis": {
        "every": 2,
        "start_after": 2,
        "faults": {"impair": {"weight": 1, "duration": [1, 2]},
                   "latency": {"weight": 1, "duration": [1, 2]}},
    },
    "drift": {"warmup": 5, "min_samples": 3, "limits": []},
}


def _schedule(path: list[str]) -> list[str]:
    profile = profile_from_dict("packet", {**PROFILE, "path": path})
    schedule = draw_schedule(
        seed=4, duration=profile.duration, viewers=profile.viewers, decoding=0,
        late_joiners=0.0, every=profile.every, start_after=profile.start_after,
        faults=[(f.kind, f.weight, f.duration) for f in profile.faults], path=profile.path,
    )
    return [step.kind for step in schedule.steps]


def test_impair_steps_are_drawn_only_with_the_packet_hop_on_the_path() -> None:
    assert set(_schedule(["packet"])) == {"impair"}  # no toxiproxy: no latency toxic
    assert "impair" not in _schedule(["toxiproxy"])


@pytest.mark.timeout(120)
def test_a_soak_through_the_packet_hop_impairs_and_clears(tmp_path: Path) -> None:
    if not USERSPACE.available:
        pytest.skip(f"userspace packet backend unavailable: {USERSPACE.detail}")
    result = run_soak(profile_from_dict("packet", PROFILE), tmp_path, seed=4)
    done = [(e["do"], e.get("error")) for e in result.executed]
    assert ("impair", None) in done and ("clear_impairment", None) in done, done
    assert result.problems == []
    assert result.passed, [v.as_dict() for v in result.verdicts if v.status.value == "FAIL"]
