"""Figures sampled at a fixed interval: per process from /proc, per Viewer from the Viewers.

Per process (the harness, which holds the Primary, taps, injectors and checkers;
the Viewer process): resident memory (MB), open descriptors, threads, and CPU
as a share of one core over the interval. Per Viewer, from the Viewer process:
frame delivery latency p50/p99 (capture stamp to arrival, ms), decode time p50/p99
(decoding Viewers: one picture's decode call, ms), rendered frames per second, and
connects. From the trace: keyframe requests on the Primary's side. Each figure is
a series of (seconds since the start, value); the stream figures are summarised
over the Viewers (median p50, worst p99, of latency and of decode time, mean fps,
total reconnects), the last figures per Viewer are kept for the report.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.trace import PRIMARY_SIDE, Record
from reference.protocol.messages import ReqKeyframe
from reference.protocol.states import ViewerState

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1e6
TICKS = os.sysconf("SC_CLK_TCK")
KEYFRAME_REQUEST = ReqKeyframe.NAME
KILLED = "killed"  # a Viewer's last figures once it was killed (no protocol state)


@dataclass(frozen=True)
class ProcessFigures:
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float


def read_process(pid: int) -> ProcessFigures | None:
    """One look at a process in /proc; None once it is gone."""
    base = Path(f"/proc/{pid}")
    try:
        statm = (base / "statm").read_text().split()
        stat = (base / "stat").read_text()
        fds = len(os.listdir(base / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Fields after the command name, which may hold spaces: state is field 3.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime, threads = int(fields[11]), int(fields[12]), int(fields[17])
    return ProcessFigures(
        rss_mb=int(statm[1]) * PAGE_MB,
        fds=fds,
        threads=threads,
        cpu_s=(utime + stime) / TICKS,
    )


@dataclass
class Series:
    """One figure over the run. Its samples are kept for the whole run (the report plots
    them), so they are kept packed: 16 bytes a sample in two arrays of doubles, not the
    ~100 of a tuple of two floats: ~10 MB less over a nightly run (20 series, every 10 s)."""

    name: str
    unit: str
    _times: array[float] = field(default_factory=lambda: array("d"))
    _values: array[float] = field(default_factory=lambda: array("d"))

    def add(self, t: float, value: float) -> None:
        self._times.append(round(t, 3))
        self._values.append(round(value, 4))

    @property
    def points(self) -> list[tuple[float, float]]:
        """(seconds since the start, value), oldest first: a copy."""
        return list(zip(self._times, self._values, strict=True))

    def __len__(self) -> int:
        return len(self._times)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "points": self.points}


def percentiles_ms(samples: list[float], prefix: str = "") -> dict[str, float]:
    """A Viewer's p50 and p99 of `samples` (seconds) in ms, as `{prefix}p50_ms` and
    `{prefix}p99_ms`, the keys `viewer_figures` reads; none under two samples."""
    if len(samples) < 2:
        return {}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {f"{prefix}p50_ms": round(cuts[49] * 1000, 3),
            f"{prefix}p99_ms": round(cuts[98] * 1000, 3)}


UNITS = {"rss_mb": "MB", "fds": "fds", "threads": "threads", "cpu_pct": "% of a core",
         "p50_ms": "ms", "p99_ms": "ms", "decode_p50_ms": "ms", "decode_p99_ms": "ms",
         "fps": "frames/s", "reconnects": "reconnects",
         "keyframe_requests": "requests", "viewers_streaming": "Viewers",
         "loop_lag_ms": "ms", "load1": "runnable"}


class Sampler:
    """Keeps every series; `sample()` reads the processes, `viewer_figures()` the Viewers."""

    def __init__(self, processes: dict[str, int], started: float) -> None:
        self.processes = dict(processes)
        self.started = started
        self.series: dict[str, Series] = {}
        self.per_viewer: dict[str, dict[str, Any]] = {}
        self.keyframe_requests = 0
        self._cpu: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._last_figures: float | None = None
        self.loop_lag = 0.0  # worst event-loop lateness since the last sample (s)

    def _add(self, name: str, t: float, value: float) -> None:
        metric = name.rsplit(".", 1)[-1]
        series = self.series.setdefault(name, Series(name, UNITS.get(metric, "")))
        series.add(t - self.started, value)

    def watch(self, name: str, pid: int) -> None:
        self.processes[name] = pid

    def observe(self, record: Record) -> None:
        """Per trace record (cheap): counts the keyframe requests the Primary received."""
        if (
            record["kind"] == "frame"
            and record.get("tap") == PRIMARY_SIDE
            and str(record.get("msg", "")).startswith(KEYFRAME_REQUEST)
        ):
            self.keyframe_requests += 1

    def sample(self, now: float) -> None:
        with self._lock:
            for name, pid in self.processes.items():
                figures = read_process(pid)
                if figures is None:
                    continue
                self._add(f"{name}.rss_mb", now, figures.rss_mb)
                self._add(f"{name}.fds", now, figures.fds)
                self._add(f"{name}.threads", now, figures.threads)
                previous = self._cpu.get(name)
                self._cpu[name] = (now, figures.cpu_s)
                if previous is not None and now > previous[0]:
                    share = (figures.cpu_s - previous[1]) / (now - previous[0]) * 100
                    self._add(f"{name}.cpu_pct", now, share)
            self._add("stream.keyframe_requests", now, self.keyframe_requests)
            # How late the harness's event loop ran, and the host's load: a timing FAIL in
            # a window where these spike may be the host, not the peer (see docs/soak.md).
            self._add("harness.loop_lag_ms", now, self.loop_lag * 1000)
            self.loop_lag = 0.0
            with contextlib.suppress(OSError):
                self._add("host.load1", now, float(Path("/proc/loadavg").read_text().split()[0]))

    def viewer_figures(
        self, now: float, figures: dict[str, dict[str, Any]], *, interval: float | None = None
    ) -> None:
        """Figures of the Viewers since their last ones. Without `interval` they are the
        whole population (a Viewer missing from them was killed); with it, one part of a
        fleet (one Locust worker's users), shipped every `interval` seconds."""
        with self._lock:
            whole = interval is None
            if whole:
                interval = now - self._last_figures if self._last_figures is not None else None
                self._last_figures = now
            self.per_viewer.update(figures)
            for vid, last in list(self.per_viewer.items()) if whole else ():
                # Marked once: a night's hundreds of killed incarnations are not copied again
                # at every sample.
                if vid not in figures and last["state"] != KILLED:
                    self.per_viewer[vid] = {**last, "state": KILLED}
            for prefix in ("", "decode_"):  # delivery latency, then decode time
                p50 = [f[f"{prefix}p50_ms"] for f in figures.values() if f"{prefix}p50_ms" in f]
                p99 = [f[f"{prefix}p99_ms"] for f in figures.values() if f"{prefix}p99_ms" in f]
                if p50:
                    self._add(f"stream.{prefix}p50_ms", now, statistics.median(p50))
                if p99:
                    self._add(f"stream.{prefix}p99_ms", now, max(p99))
            if interval and figures:
                fps = [f["rendered"] / interval for f in figures.values()]
                self._add("stream.fps", now, statistics.fmean(fps))
            reconnects = sum(max(0, f["connects"] - 1) for f in figures.values())
            self._add("stream.reconnects", now, reconnects)
            streaming = ViewerState.STREAMING.value
            streaming_now = sum(1 for f in figures.values() if f["state"] == streaming)
            self._add("stream.viewers_streaming", now, streaming_now)

    def states(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for figures in self.per_viewer.values():
                out[figures["state"]] = out.get(figures["state"], 0) + 1
            return out

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "series": {name: s.as_dict() for name, s in sorted(self.series.items())},
                "viewers": self.per_viewer,
            }
