"""Drift: the slope of a sampled figure after warm-up, against the profile's limit.

The slope is the Theil-Sen estimator (the median of the slopes between pairs of
samples): a fault that doubles the latency for ten seconds moves a least-squares
line, it does not move the median of pairwise slopes. Up to `MAX_POINTS` samples
are used, evenly thinned, so a night's series costs the same as an hour's.
A limit is absolute (`max_per_h`, in the figure's unit per hour) or relative
(`max_pct_per_h`, per hour as a share of the figure's median after warm-up).
Too few samples after warm-up is NOT_OBSERVED, never a PASS.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from harness.checks.verdict import Status
from harness.soak.profile import Limit
from harness.soak.sampler import Series

MAX_POINTS = 400


def theil_sen(points: list[tuple[float, float]]) -> float:
    """Median pairwise slope (value per second)."""
    if len(points) > MAX_POINTS:
        step = len(points) / MAX_POINTS
        points = [points[int(i * step)] for i in range(MAX_POINTS)]
    slopes = [
        (b[1] - a[1]) / (b[0] - a[0])
        for i, a in enumerate(points)
        for b in points[i + 1:]
        if b[0] > a[0]
    ]
    return statistics.median(slopes) if slopes else 0.0


@dataclass
class DriftResult:
    limit: Limit
    status: Status
    summary: str
    slope_per_h: float | None = None
    pct_per_h: float | None = None
    samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.limit.name,
            "metric": self.limit.metric,
            "status": self.status.value,
            "summary": self.summary,
            "slope_per_h": self.slope_per_h,
            "pct_per_h": self.pct_per_h,
            "samples": self.samples,
            "max_per_h": self.limit.max_per_h,
            "max_pct_per_h": self.limit.max_pct_per_h,
        }


def judge(limit: Limit, series: Series | None, warmup: float, min_samples: int) -> DriftResult:
    if series is None:
        return DriftResult(limit, Status.NOT_OBSERVED, f"{limit.metric} was never sampled")
    after = [p for p in series.points if p[0] >= warmup]
    if len(after) < min_samples:
        return DriftResult(
            limit,
            Status.NOT_OBSERVED,
            f"{len(after)} sample(s) of {limit.metric} after the {warmup:g} s warm-up, "
            f"{min_samples} needed",
            samples=len(after),
        )
    slope_h = theil_sen(after) * 3600
    unit = series.unit
    if limit.max_pct_per_h is not None:
        base = statistics.median(v for _, v in after)
        pct = slope_h / base * 100 if base else 0.0
        ok = pct <= limit.max_pct_per_h
        summary = (
            f"{limit.metric} drifts {pct:+.1f} %/h ({slope_h:+.3g} {unit}/h from a median of "
            f"{base:.3g} {unit}); limit {limit.max_pct_per_h:g} %/h"
        )
        return DriftResult(limit, Status.PASS if ok else Status.FAIL, summary,
                           round(slope_h, 4), round(pct, 3), len(after))
    assert limit.max_per_h is not None
    ok = slope_h <= limit.max_per_h
    summary = (
        f"{limit.metric} grows {slope_h:+.3g} {unit}/h over {len(after)} samples after "
        f"{warmup:g} s; limit {limit.max_per_h:g} {unit}/h"
    )
    return DriftResult(limit, Status.PASS if ok else Status.FAIL, summary,
                       round(slope_h, 4), None, len(after))


def judge_all(
    limits: list[Limit], series: dict[str, Series], warmup: float, min_samples: int
) -> list[DriftResult]:
    return [judge(limit, series.get(limit.metric), warmup, min_samples) for limit in limits]
