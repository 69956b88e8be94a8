"""The live dashboard draws what the brief lists: time, Viewers by state, faults, verdicts."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from harness.soak.console import Dashboard
from harness.soak.run import SoakRun, WindowSummary
from tests.soak.conftest import churn_profile


def test_dashboard_renders_the_live_figures(tmp_path: Path) -> None:
    profile = churn_profile()
    run = SoakRun(profile, tmp_path, 3)
    run.started = run.trace.now() - 5
    run.sampler.viewer_figures(1.0, {"v01": {"state": "STREAMING", "rendered": 3, "connects": 1},
                                     "v02": {"state": "DISCONNECTED", "rendered": 0,
                                             "connects": 2}})
    run.active[run.schedule.steps[0].id] = run.schedule.steps[0]
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    board = Dashboard(profile, console)
    board.window_closed(WindowSummary(0, 0.0, 6.0, 10, {"PASS": 3, "FAIL": 1, "NOT_OBSERVED": 2},
                                      fails=[{"id": "w0000-HB-1", "summary": "late"}]))
    console.print(board.render(run))
    text = out.getvalue()
    assert "seed 3" in text and "elapsed 0:00:0" in text and "remaining 0:00:1" in text
    assert "STREAMING" in text and "DISCONNECTED" in text
    assert f"faults active: {run.schedule.steps[0].id}" in text
    assert "PASS 3" in text and "FAIL 1" in text
    assert "last FAIL: w0000-HB-1 late" in text
    run.segments.close()
