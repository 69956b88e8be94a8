"""Planted bug: a Viewer that keeps 1 MiB per connect FAILs the RSS drift limit; the
reference Viewers under the same churn do not."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checks.verdict import Status
from harness.soak.run import SoakResult
from tests.soak.conftest import churn_profile, soak


def test_reference_viewers_pass_every_limit(reference_runs: list[SoakResult]) -> None:
    result = reference_runs[0]
    assert result.problems == []
    assert [d.status for d in result.drift] == [Status.PASS], [d.summary for d in result.drift]
    assert result.failed_requirements == []
    assert result.passed
    data = json.loads((result.directory / "soak.json").read_text())
    assert data["schema_version"] == 1 and data["verdict"] == "PASS"
    assert (result.directory / "soak.html").read_text().count("<svg") >= 4
    assert "<testcase" in (result.directory / "junit.xml").read_text()


def test_leak_on_reconnect_fails_the_rss_limit(tmp_path: Path) -> None:
    profile = churn_profile(viewer_deviations=["leak_on_reconnect"])
    result = soak(profile, tmp_path, 5)
    (rss,) = result.drift
    assert rss.status is Status.FAIL, rss.summary
    assert rss.slope_per_h is not None and rss.slope_per_h > 10 * 500 / 4
    assert not result.passed
    # The leak breaks no wire rule: only the drift limit FAILs.
    assert result.failed_requirements == []
    junit = (tmp_path / "junit.xml").read_text()
    assert "<failure" in junit and "DRIFT viewers.rss_mb" in junit
