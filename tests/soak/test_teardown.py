"""A soak ends cleanly: asyncio reports no task destroyed while pending, no exception never
retrieved, no coroutine never awaited, in the harness or in the Viewer process (whose stderr
is the soak's). Seed 3 of this profile kills and rejoins Viewers, restarts the Primary and
cuts the proxy; before the Viewers' connections cancelled their waiters, it printed "Task was
destroyed but it is pending!" twice in every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scenarios.suite_runs import env

PROFILE = {
    "duration": 20,
    "viewers": 6,
    "decoding": 1,
    "late_joiners": 0.2,
    "window": 5,
    "sample_interval": 1,
    "path": ["toxiproxy", "frame_proxy"],
    "nemesis": {
        "every": 2,
        "start_after": 2,
        "faults": {
            "latency": {"weight": 1, "duration": [1, 3]},
            "kill_viewer": {"weight": 2, "duration": [1, 2]},
            "reconnect_storm": {"weight": 1, "duration": [0.5, 1]},
            "reconfigure": {"weight": 1, "duration": [1, 1]},
            "restart_primary": {"weight": 1, "duration": [0.5, 1]},
            "drop": {"weight": 1, "duration": [1, 2]},
            "disable_proxy": {"weight": 1, "duration": [1, 2]},
        },
    },
    "drift": {"warmup": 5, "min_samples": 3, "limits": []},
}
ASYNCIO_COMPLAINTS = (
    "Task was destroyed but it is pending",
    "Task exception was never retrieved",
    "was never awaited",
)


@pytest.mark.timeout(180)
def test_a_short_soak_leaves_no_pending_task(tmp_path: Path) -> None:
    profile = tmp_path / "teardown.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    process = subprocess.run(
        [sys.executable, "-m", "harness.cli", "soak", "--profile", str(profile), "--seed", "3",
         "--report-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=150, cwd=tmp_path, env=env(),
    )
    assert (tmp_path / "run" / "soak.json").exists(), process.stdout + process.stderr
    complaints = [line for line in process.stderr.splitlines()
                  if any(c in line for c in ASYNCIO_COMPLAINTS)]
    assert complaints == [], process.stderr
    # The decoding Viewer's decode time is sampled; header-only Viewers have none.
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    decode = data["figures"]["series"]["stream.decode_p99_ms"]["points"]
    assert decode and all(value > 0 for _, value in decode)
    decoding = {vid for vid, f in data["figures"]["viewers"].items() if f.get("decode")}
    timed = {vid for vid, f in data["figures"]["viewers"].items() if "decode_p99_ms" in f}
    assert timed and timed <= decoding
