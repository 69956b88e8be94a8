"""The sampled series: kept for the whole run, so packed (a night must not grow the harness)."""

from __future__ import annotations

import json
import tracemalloc

from harness.soak.sampler import Series


def test_points_round_trip_rounded_and_in_order() -> None:
    series = Series("harness.rss_mb", "MB")
    series.add(0.12345, 101.123456)
    series.add(2.0, 102.5)
    assert series.points == [(0.123, 101.1235), (2.0, 102.5)]
    assert len(series) == 2
    assert json.loads(json.dumps(series.as_dict()))["points"] == [[0.123, 101.1235], [2.0, 102.5]]


def test_a_sample_costs_at_most_twenty_four_bytes() -> None:
    """Two doubles (16 bytes) plus the arrays' growth reserve, measured by tracemalloc:
    a tuple of two floats would cost about 100."""
    samples = 100_000
    series = Series("stream.p99_ms", "ms")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(samples):
            series.add(i * 10.0, 40.0 + i % 7)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / samples <= 24, grown / samples
