"""benchmarks/fleet_capacity.py's arithmetic on given numbers: the figure and the frame rate."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import pytest

# A benchmark is a script, not a package module: loaded from its file.
_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fleet_capacity.py"
_SPEC = importlib.util.spec_from_file_location("fleet_capacity", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["fleet_capacity"] = bench  # its dataclasses look their module up
_SPEC.loader.exec_module(bench)


def step(users: int, p99_ms: float, *, failures: int = 0, streaming: int | None = None,
         delivered: float = 1.0) -> Any:
    return bench.Step(users=users, streaming=users if streaming is None else streaming, fps=30,
                frames_per_s=users * 30 * delivered, p50_ms=p99_ms / 2, p99_ms=p99_ms,
                max_ms=p99_ms, failures={"stale epoch 3": failures} if failures else {},
                worker_cpu_pct=0.0, worker_wait_pct=0.0, master_cpu_pct=0.0,
                primary_cpu_pct=0.0, load_before=1.0, load=(1.0, 1.0, 1.0))


def test_the_figure_is_the_largest_step_before_the_first_miss() -> None:
    steps = [step(10, 12), step(50, 30), step(100, 49), step(150, 50), step(200, 40)]
    assert bench.capacity(steps) == 100  # 150 reaches 50 ms; 200 below it again does not count
    assert bench.capacity([step(10, 60), step(25, 20)]) == 0
    assert bench.capacity([]) == 0


@pytest.mark.parametrize("missing", [
    step(100, 20, failures=1),
    step(100, 20, streaming=99),
    step(100, 20, delivered=0.94),
    step(100, math.nan),  # no latency at all is no pass
])
def test_a_step_under_the_latency_limit_still_misses_on(missing: Any) -> None:
    assert not bench.meets(missing)
    assert bench.capacity([step(50, 20), missing, step(150, 20)]) == 50


def test_frames_per_second_come_from_the_figures_inside_the_window() -> None:
    # (t, frames rendered since the previous figures), one figures line a second
    figures = [(9.0, 25), (10.0, 30), (11.0, 29), (12.0, 31), (13.0, 30)]
    assert bench.rendered_rate(figures, 10.0, 12.5) == pytest.approx(30.0)  # 60 frames over 11-12
    assert bench.rendered_rate(figures, 10.0, 13.0) == pytest.approx(30.0)
    assert math.isnan(bench.rendered_rate(figures, 8.0, 12.0))  # nothing before the window began
    assert math.isnan(bench.rendered_rate(figures, 13.0, 20.0))  # nothing inside it


def test_the_worker_cost_per_thousand_frames_a_second() -> None:
    busy = step(100, 20)  # 3,000 frames/s
    busy.worker_cpu_pct = 15.0
    assert busy.worker_cpu_per_kfps == pytest.approx(5.0)
    assert math.isnan(step(10, 20, delivered=0.0).worker_cpu_per_kfps)
