"""Beside a testee, a drift limit on the harness's own process is its health, not a FAIL
of the testee, and the same limit binds the testee's process in that place."""

from __future__ import annotations

from types import SimpleNamespace

from harness.checks.verdict import Status
from harness.soak.profile import Limit, load_profile
from harness.soak.run import SoakResult, SoakRun
from harness.soak.sampler import Series
from harness.soak.testees import Split

RSS = Limit("harness.rss_mb", max_per_h=5)
VIEWER_FDS = Limit("viewers.fds", max_per_h=0)
P99 = Limit("stream.p99_ms", max_pct_per_h=10)


def test_external_primary_takes_the_limits_of_the_process_it_stands_in_for() -> None:
    testee, harness = Split(True, frozenset()).drift_limits([RSS, VIEWER_FDS, P99], [])
    assert [lim.metric for lim in testee] == ["primary.rss_mb", "stream.p99_ms"]
    assert testee[0].max_per_h == 5
    assert harness == [RSS, VIEWER_FDS]


def test_external_viewers_take_the_population_limits_each() -> None:
    sampled = ["viewers.fds", "external.x01.fds", "external.x02.fds", "external.x01.rss_mb"]
    testee, harness = Split(False, frozenset({"x01", "x02"})).drift_limits(
        [RSS, VIEWER_FDS], sampled)
    assert [lim.metric for lim in testee] == ["external.x01.fds", "external.x02.fds"]
    assert harness == [RSS, VIEWER_FDS]  # the reference Primary is the harness here


def rising(name: str, per_h: float) -> Series:
    series = Series(name, "MB")
    for i in range(60):
        series.add(i * 60.0, 100 + per_h * i / 60)
    return series


def judged(split: Split | None, series: dict[str, Series]) -> SoakResult:
    profile = load_profile("smoke")
    profile.limits, profile.warmup, profile.min_samples = [RSS], 0.0, 10
    run = SimpleNamespace(split=split, profile=profile, sampler=SimpleNamespace(series=series))
    result = SoakResult(profile=profile, seed=1, directory=None,  # type: ignore[arg-type]
                        schedule=None)  # type: ignore[arg-type]
    result.duration = 3600.0
    SoakRun._judge_drift(run, result)  # type: ignore[arg-type]
    return result


def test_a_growing_harness_beside_a_flat_testee_is_a_harness_fault() -> None:
    result = judged(Split(True, frozenset()), {"harness.rss_mb": rising("harness.rss_mb", 60),
                                                "primary.rss_mb": rising("primary.rss_mb", 0)})
    assert [(d.limit.metric, d.status) for d in result.drift] == [
        ("primary.rss_mb", Status.PASS)]
    assert [d.status for d in result.harness_drift] == [Status.FAIL]
    assert [f["requirement"] for f in result.harness_faults] == [RSS.name]
    assert not result.failed_limits


def test_a_growing_testee_fails_its_limit() -> None:
    result = judged(Split(True, frozenset()), {"harness.rss_mb": rising("harness.rss_mb", 0),
                                                "primary.rss_mb": rising("primary.rss_mb", 60)})
    assert result.failed_limits == ["DRIFT primary.rss_mb <= 5/h"]
    assert not result.harness_faults


def test_without_a_testee_the_harness_process_is_the_reference_peers_and_fails() -> None:
    result = judged(None, {"harness.rss_mb": rising("harness.rss_mb", 60)})
    assert result.failed_limits == [RSS.name] and not result.harness_drift
