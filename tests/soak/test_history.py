"""`--history DIR` over three short runs renders a trend page."""

from __future__ import annotations

import json
from pathlib import Path

from harness.soak.history import append_run, load_history
from harness.soak.run import SoakResult
from tests.soak.conftest import churn_profile, soak


def test_three_runs_make_a_trend_page(reference_runs: list[SoakResult], tmp_path: Path) -> None:
    third = soak(churn_profile(viewer_deviations=["leak_on_reconnect"]), tmp_path / "run3", 9)
    history = tmp_path / "history"
    for result in (*reference_runs, third):
        trend = append_run(history, result)
    runs = load_history(history)
    assert len(runs) == 3 and len(list(history.glob("*.json"))) == 3
    assert [r["seed"] for r in runs].count(5) == 2 and runs[-1]["seed"] in (5, 9)
    assert {r["verdict"] for r in runs} == {"PASS", "FAIL"}
    page = trend.read_text()
    assert page.count("<tr class=") == 3
    assert "slope viewers.rss_mb" in page and "<svg" in page
    assert "DRIFT viewers.rss_mb" in json.dumps(runs)
