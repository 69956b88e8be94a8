"""The live dashboard of a soak (rich), and the summary printed when it ends.

On a terminal the dashboard redraws once a second: elapsed and remaining time,
Viewers by state, the faults active now, verdict counts over the closed
windows, and the last FAIL. Off a terminal (CI logs) it prints one line per
window instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.checks.verdict import Status
from harness.soak.profile import Profile

if TYPE_CHECKING:
    from harness.soak.run import SoakResult, SoakRun, WindowSummary

REFRESH_S = 1.0


class Dashboard(AbstractContextManager["Dashboard"]):
    def __init__(self, profile: Profile, console: Console | None = None) -> None:
        self.profile = profile
        self.console = console or Console(file=sys.stdout)
        self.live: Live | None = None
        self.counts = {s.value: 0 for s in Status}
        self.last_fail: dict[str, Any] | None = None
        self.windows = 0

    def __enter__(self) -> Dashboard:
        if self.console.is_terminal:
            self.live = Live(Text("soak starting"), console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def window_closed(self, summary: WindowSummary) -> None:
        self.windows += 1
        for status, n in summary.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        if summary.fails:
            self.last_fail = summary.fails[-1]
        if self.live is None:
            fails = ", ".join(f["id"] for f in summary.fails) or "no FAIL"
            if summary.harness_faults:
                fails += "; harness faults " + ", ".join(f["id"] for f in summary.harness_faults)
            self.console.print(
                f"window {summary.index} [{summary.start:.0f}-{summary.end:.0f} s] "
                f"{summary.records} records, {fails}", markup=False, highlight=False
            )

    async def refresh_loop(self, run: SoakRun) -> None:
        while True:
            if self.live is not None:
                self.live.update(self.render(run))
            await asyncio.sleep(REFRESH_S)  # the dashboard's redraw rate

    def render(self, run: SoakRun) -> Group:
        elapsed = run.elapsed()
        remaining = max(0.0, self.profile.duration - elapsed)
        head = Text(
            f"soak {self.profile.name}  seed {run.seed}  elapsed {_hms(elapsed)}  "
            f"remaining {_hms(remaining)}  records {run.engine.records}"
        )
        states = Table(title="Viewers", show_edge=False)
        counts = sorted(run.sampler.states().items())
        for state, _ in counts:
            states.add_column(state)
        states.add_row(*(str(n) for _, n in counts))
        faults = Text("faults active: " + (", ".join(
            f"{s.id} {s.kind}" for s in run.active.values()) or "none"))
        verdicts = Text(
            f"windows {self.windows}: "
            + "  ".join(f"{k} {v}" for k, v in self.counts.items())
        )
        last = Text(
            "last FAIL: " + (f"{self.last_fail['id']} {self.last_fail['summary']}"
                             if self.last_fail else "none")
        )
        return Group(head, states, faults, verdicts, last)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summary_lines(result: SoakResult, paths: dict[str, str]) -> Iterator[str]:
    verdict = result.verdict
    yield (
        f"soak {result.profile.name} seed {result.seed}: {verdict} after {result.duration:.1f} s, "
        f"{result.records} records, {len(result.windows)} window(s), "
        f"checker CPU {result.checker_cpu_s:.1f} s "
        f"({100 * result.checker_cpu_s / max(result.duration, 1e-9):.1f} % of a core), "
        f"segments on disk {result.disk.get('segments_bytes', 0) / 1e6:.1f} MB"
    )
    testee = f" ({result.testees['judged']})" if result.testees.get("judged") else ""
    for v in result.verdicts:
        if v.status in (Status.FAIL, Status.INCONCLUSIVE):
            yield f"  {v.requirement} {v.status.value}{testee}: {v.summary}"
    for fault in result.harness_faults:
        where = "over the run" if fault["window"] is None else f"in window {fault['window']}"
        yield (f"  harness fault: {fault['requirement']} FAILed on {fault['peers']} {where}: "
               f"{fault['summary']}")
    for d in result.drift:
        if d.status is not Status.PASS:
            yield f"  {d.limit.name} {d.status.value}: {d.summary}"
    for problem in result.problems:
        yield f"  problem: {problem}"
    if not any(v.status is Status.PASS for v in result.verdicts):
        yield "  nothing was judged PASS: a soak that checked nothing is not green"
    for name, path in paths.items():
        yield f"  {name}: {path}"
