"""report.html: one self-contained page per run, for people.

The page is built from report.json (summary.py) and each scenario's trace, read
once, line by line. Everything it shows from the run goes through `esc`: a
trace is data from peers under test and may carry any string.

The timeline picture of a scenario is an inline SVG: one lane per Viewer (its
seven states, epoch changes, REQ_KEYFRAMEs it sent, a density strip of rendered
pictures), one lane for the Primary's stream state, one for faults (start to
stop) and one for scenario actions. Drawing is bounded by the picture's pixels,
not by the trace's length: segments and ticks narrower than a pixel are merged.
"""

from __future__ import annotations

import html
import json
import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.trace import viewer_tap_name
from reference.protocol.states import StreamState, ViewerState

VIEWER_COLOURS: dict[str, str] = {
    ViewerState.DISCONNECTED.value: "#9e9e9e",
    ViewerState.SOCKET_CONNECTED.value: "#90caf9",
    ViewerState.AUTHENTICATING.value: "#5c6bc0",
    ViewerState.NEGOTIATING.value: "#ab47bc",
    ViewerState.RECONFIGURING.value: "#ffb300",
    ViewerState.STREAMING.value: "#43a047",
    ViewerState.RECOVERING.value: "#e53935",
}
STREAM_COLOURS: dict[str, str] = {
    StreamState.ACTIVE.name: "#43a047",
    StreamState.RECONFIGURING.name: "#ffb300",
    StreamState.PAUSED.name: "#29b6f6",
    StreamState.STOPPED.name: "#616161",
}
UNKNOWN_COLOUR = "#212121"  # a state name outside the protocol: drawn, never hidden
VERDICT_COLOURS: dict[str, str] = {
    "PASS": "#2e7d32",
    "FAIL": "#c62828",
    "NOT_OBSERVED": "#757575",
    "NOT_COVERED": "#ef8f00",
    "ERROR": "#6a1b9a",
    "INCONCLUSIVE": "#ef8f00",
    "NOT_APPLICABLE": "#9e9e9e",
    "BROKEN": "#6a1b9a",
    "INTERRUPTED": "#6a1b9a",
}
FAULT_COLOURS = {"toxiproxy": "#fb8c00", "frame_proxy": "#8e24aa"}

# Bounds that keep a page small whatever the trace holds.
MAX_VIEWER_LANES = 24
MAX_STATE_CHANGES = 20_000  # per lane; pixel merging keeps the drawing far smaller
MAX_FAULTS = 200
MAX_TICKS = 20_000  # per kind of tick (applied faults, actions, REQ_KEYFRAME) per scenario
MAX_NOTED_LINES = 5

# Geometry of the picture, in SVG pixels.
LABEL_W = 130
PLOT_W = 820
WIDTH = LABEL_W + PLOT_W + 20
LANE_H = 14
LABEL_SPACE = 10  # above a lane, for epoch labels
STRIP_H = 4
DENSITY_BINS = 205
MIN_LABEL_GAP = 26.0  # pixels between two epoch labels on one lane


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- reading a trace ------------------------------------------------------------


@dataclass
class StateLane:
    """A lane of state changes: (t, state, epoch), t relative to the trace's first record."""

    changes: list[tuple[float, str, int | None]] = field(default_factory=list)
    dropped: int = 0

    def add(self, t: float, state: str, epoch: int | None) -> None:
        if len(self.changes) < MAX_STATE_CHANGES:
            self.changes.append((t, state, epoch))
        else:
            self.dropped += 1


@dataclass
class ViewerTrack:
    states: StateLane = field(default_factory=StateLane)
    rendered: list[float] = field(default_factory=list)
    keyframe_requests: list[float] = field(default_factory=list)


@dataclass
class FaultSpan:
    label: str
    source: str
    detail: str
    start: float | None = None
    stop: float | None = None
    applied: list[float] = field(default_factory=list)


@dataclass
class TraceDigest:
    """What the page needs from one trace, gathered in a single pass."""

    path: Path | None
    problem: str | None = None  # the trace could not be read at all
    origin: float | None = None
    end: float = 0.0
    records: int = 0
    frames: int = 0
    malformed: list[int] = field(default_factory=list)
    viewers: dict[str, ViewerTrack] = field(default_factory=dict)
    extra_viewers: set[str] = field(default_factory=set)
    primary: StateLane = field(default_factory=StateLane)
    faults: list[FaultSpan] = field(default_factory=list)
    open_faults: dict[str, FaultSpan] = field(default_factory=dict)
    actions: list[tuple[float, str, str]] = field(default_factory=list)

    def rel(self, t: float) -> float:
        return t - self.origin if self.origin is not None else 0.0

    def viewer(self, name: str) -> ViewerTrack | None:
        track = self.viewers.get(name)
        if track is None:
            if len(self.viewers) >= MAX_VIEWER_LANES:
                self.extra_viewers.add(name)
                return None
            track = self.viewers[name] = ViewerTrack()
        return track


def _frame_fast_path(line: str) -> float | None:
    """The t of a plain media `frame` record, without a full JSON parse, else None.

    Frame records are most of a trace and the page only counts them. TraceWriter
    writes `{"t":…,"kind":"frame",…}` compactly; anything else (or a control frame,
    which may be a REQ_KEYFRAME) takes the full parse.
    """
    if not line.startswith('{"t":'):
        return None
    comma = line.find(",", 5)
    if comma < 0 or not line.startswith('"kind":"frame"', comma + 1):
        return None
    if '"type":"CONTROL"' in line or not line.rstrip().endswith("}"):
        return None
    try:
        return float(line[5:comma])
    except ValueError:
        return None


def read_trace_digest(path: Path | None) -> TraceDigest:
    digest = TraceDigest(path)
    if path is None:
        digest.problem = "no trace recorded"
        return digest
    try:
        with path.open("r", encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                _digest_line(digest, number, line)
    except OSError as exc:
        digest.problem = f"trace not readable: {exc.strerror or exc}"
    return digest


def _digest_line(digest: TraceDigest, number: int, line: str) -> None:
    fast_t = _frame_fast_path(line)
    if fast_t is not None:
        _seen(digest, fast_t)
        digest.frames += 1
        return
    if not line.strip():
        return
    try:
        record = json.loads(line)
        t = float(record["t"])
    except (ValueError, TypeError, KeyError):
        digest.malformed.append(number)
        return
    if not isinstance(record, dict):
        digest.malformed.append(number)
        return
    _seen(digest, t)
    _take(digest, record, digest.rel(t))


def _seen(digest: TraceDigest, t: float) -> None:
    if digest.origin is None:
        digest.origin = t
    digest.records += 1
    digest.end = max(digest.end, t - digest.origin)


def _take(digest: TraceDigest, record: dict[str, Any], t: float) -> None:
    kind = record.get("kind")
    if kind == "telemetry":
        event = record.get("event")
        if event not in ("state", "rendered"):
            return
        track = digest.viewer(str(record.get("viewer", "?")))
        if track is None:
            return
        if event == "state":
            track.states.add(t, str(record.get("state")), _int_or_none(record.get("epoch")))
        elif len(track.rendered) < MAX_TICKS * 10:
            track.rendered.append(t)
    elif kind == "primary":
        if record.get("what") == "state":
            digest.primary.add(
                t, str(record.get("stream_state")), _int_or_none(record.get("epoch"))
            )
    elif kind == "fault":
        _take_fault(digest, record, t)
    elif kind == "action":
        if len(digest.actions) < MAX_TICKS:
            params = {k: v for k, v in record.items() if k not in ("t", "kind", "action")}
            detail = json.dumps(params, default=str) if params else ""
            digest.actions.append((t, str(record.get("action")), detail))
    elif kind == "frame":
        digest.frames += 1
        tap = str(record.get("tap", ""))
        msg = record.get("msg")
        if (
            tap.startswith(viewer_tap_name(""))
            and record.get("dir") == "v2p"
            and isinstance(msg, str)
            and msg.startswith("REQ_KEYFRAME")
        ):
            track = digest.viewer(tap.removeprefix(viewer_tap_name("")))
            if track is not None and len(track.keyframe_requests) < MAX_TICKS:
                track.keyframe_requests.append(t)


def _take_fault(digest: TraceDigest, record: dict[str, Any], t: float) -> None:
    """Pair each fault's start with its stop; a frame-proxy fault's work is a tick."""
    source = str(record.get("source", "?"))
    fault = str(record.get("fault", "?"))
    params = {k: v for k, v in record.items() if k not in ("t", "kind")}
    detail = json.dumps(params, default=str)
    if source == "frame_proxy":
        key = f"fp:{record.get('fault_id', fault)}"
        action = record.get("action")
        label = str(record.get("id") or fault)
        if action == "added":
            added = FaultSpan(label, source, detail, start=t)
            _start_fault(digest, key, added)
            window = record.get("params") or {}
            if isinstance(window.get("duration"), int | float):
                # A timed fault ends by itself; no removal record will say so.
                added.stop = t + float(window.get("start") or 0) + float(window["duration"])
        elif action == "removed":
            _stop_fault(digest, key, FaultSpan(label, source, detail), t)
        else:
            span = digest.open_faults.get(key)
            if span is not None and len(span.applied) < MAX_TICKS:
                span.applied.append(t)
        return
    if fault == "disable_proxy":
        _start_fault(digest, "tp:disabled", FaultSpan("proxy disabled", source, detail, start=t))
    elif fault == "enable_proxy":
        _stop_fault(digest, "tp:disabled", FaultSpan("proxy disabled", source, detail), t)
    elif fault == "removed":
        name = str(record.get("name"))
        _stop_fault(digest, f"tp:{name}", FaultSpan(name, source, detail), t)
    else:
        name = str(record.get("name") or f"{fault}_{record.get('stream', 'downstream')}")
        _start_fault(digest, f"tp:{name}", FaultSpan(name, source, detail, start=t))


def _start_fault(digest: TraceDigest, key: str, span: FaultSpan) -> None:
    if len(digest.faults) >= MAX_FAULTS:
        return
    previous = digest.open_faults.pop(key, None)
    if previous is not None:
        previous.stop = span.start  # replaced without a removal record
    digest.faults.append(span)
    digest.open_faults[key] = span


def _stop_fault(digest: TraceDigest, key: str, orphan: FaultSpan, t: float) -> None:
    span = digest.open_faults.pop(key, None)
    if span is not None:
        span.stop = t
    elif len(digest.faults) < MAX_FAULTS:
        orphan.stop = t  # a stop whose start the trace does not hold
        digest.faults.append(orphan)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the timeline picture ---------------------------------------------------------


class Scale:
    def __init__(self, span: float) -> None:
        self.span = max(span, 1e-3)

    def x(self, t: float) -> float:
        return LABEL_W + min(max(t, 0.0), self.span) / self.span * PLOT_W


def _nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 12:
            return float(step)
    return span / 10


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _state_lane(
    out: list[str], lane: StateLane, colours: dict[str, str], scale: Scale, y: float, end: float
) -> None:
    """Coloured segments, one per state; sub-pixel segments merge into their neighbour."""
    changes = lane.changes
    drawn_to = LABEL_W - 1.0
    last_label_x = -1e9
    previous_epoch: int | None = None
    for i, (t, state, epoch) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end
        x0, x1 = scale.x(t), scale.x(stop)
        x0 = max(x0, drawn_to)
        if x1 - x0 >= 0.5 or (i + 1 == len(changes) and x1 > x0):
            colour = colours.get(state, UNKNOWN_COLOUR)
            out.append(
                f'<rect x="{_fmt(x0)}" y="{_fmt(y)}" width="{_fmt(max(x1 - x0, 0.5))}" '
                f'height="{LANE_H}" fill="{colour}"><title>{esc(state)} epoch {esc(epoch)} '
                f"from {t:.3f} s</title></rect>"
            )
            drawn_to = x1
        if epoch is not None and epoch != previous_epoch:
            x = scale.x(t)
            if x - last_label_x >= MIN_LABEL_GAP:
                out.append(
                    f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(y - 3)}" '
                    f'y2="{_fmt(y + LANE_H)}" class="ep"/>'
                    f'<text x="{_fmt(x + 1)}" y="{_fmt(y - 2)}" class="el">e{esc(epoch)}</text>'
                )
                last_label_x = x
        if epoch is not None:
            previous_epoch = epoch


def _ticks(times: Iterable[float], scale: Scale, y: float, h: float) -> str:
    """One path for many ticks; at most one tick per pixel column."""
    columns = sorted({round(scale.x(t)) for t in times})
    return "".join(f"M{x} {_fmt(y)}v{h}" for x in columns)


def _density_strip(times: list[float], scale: Scale, y: float) -> list[str]:
    if not times:
        return []
    bins = [0] * DENSITY_BINS
    for t in times:
        index = int(min(max(t, 0.0), scale.span) / scale.span * (DENSITY_BINS - 1))
        bins[index] += 1
    peak = max(bins)
    width = PLOT_W / DENSITY_BINS
    out = []
    for index, count in enumerate(bins):
        if count:
            out.append(
                f'<rect x="{_fmt(LABEL_W + index * width)}" y="{_fmt(y)}" '
                f'width="{_fmt(width + 0.3)}" height="{STRIP_H}" fill="#1b5e20" '
                f'fill-opacity="{0.15 + 0.85 * count / peak:.2f}"/>'
            )
    return out


def _pack_faults(faults: list[FaultSpan], end: float, rows: int) -> list[int]:
    """A row per fault so that overlapping faults sit apart (the last row takes the rest)."""
    row_ends = [-1.0] * rows
    placed = []
    for span in faults:
        start = span.start if span.start is not None else 0.0
        stop = span.stop if span.stop is not None else end
        row = next((r for r in range(rows) if row_ends[r] < start), rows - 1)
        row_ends[row] = max(row_ends[row], stop + end * 0.06)  # room for its label
        placed.append(row)
    return placed


def timeline_svg(digest: TraceDigest, failing_evidence: list[tuple[float, str]]) -> str:
    end = max(digest.end, 1e-3)
    scale = Scale(end)
    out: list[str] = []
    y = 8.0

    def lane_label(text: str, lane_y: float, note: str = "") -> None:
        out.append(
            f'<text x="{LABEL_W - 6}" y="{_fmt(lane_y + LANE_H - 3)}" class="ll">'
            f"{esc(text[:18])}<title>{esc(text)}{esc(note)}</title></text>"
        )

    for name, track in sorted(digest.viewers.items()):
        y += LABEL_SPACE
        lane_label(f"viewer {name}", y)
        out.append(
            f'<rect x="{LABEL_W}" y="{_fmt(y)}" width="{PLOT_W}" height="{LANE_H}" class="bg"/>'
        )
        _state_lane(out, track.states, VIEWER_COLOURS, scale, y, end)
        if track.keyframe_requests:
            out.append(
                f'<path d="{_ticks(track.keyframe_requests, scale, y, 5)}" class="kf">'
                f"<title>REQ_KEYFRAME sent ({len(track.keyframe_requests)})</title></path>"
            )
        y += LANE_H + 1
        out.extend(_density_strip(track.rendered, scale, y))
        y += STRIP_H + 3

    y += LABEL_SPACE
    lane_label("primary", y)
    out.append(f'<rect x="{LABEL_W}" y="{_fmt(y)}" width="{PLOT_W}" height="{LANE_H}" class="bg"/>')
    _state_lane(out, digest.primary, STREAM_COLOURS, scale, y, end)
    y += LANE_H + 8

    rows = min(max(len(digest.faults), 1), 4)
    fault_h = 10
    lane_label("faults", y + (rows * (fault_h + 2) - LANE_H) / 2)
    placed = _pack_faults(digest.faults, end, rows)
    for span, row in zip(digest.faults, placed, strict=True):
        ry = y + row * (fault_h + 2)
        colour = FAULT_COLOURS.get(span.source, UNKNOWN_COLOUR)
        x0 = scale.x(span.start) if span.start is not None else LABEL_W
        x1 = scale.x(span.stop) if span.stop is not None else LABEL_W + PLOT_W
        dash = "" if span.stop is not None else ' stroke-dasharray="3 2"'
        title = (
            f"{span.source} {span.label}: "
            f"{'?' if span.start is None else f'{span.start:.3f}'} s to "
            f"{'end of trace' if span.stop is None else f'{span.stop:.3f} s'}"
            f"{f', applied {len(span.applied)}x' if span.applied else ''}\n{span.detail}"
        )
        out.append(
            f"<g><title>{esc(title)}</title>"
            f'<rect x="{_fmt(x0)}" y="{_fmt(ry)}" width="{_fmt(max(x1 - x0, 1.5))}" '
            f'height="{fault_h}" fill="{colour}" fill-opacity="0.35" stroke="{colour}"{dash}/>'
        )
        if span.start is not None:
            out.append(
                f'<path d="M{_fmt(x0)} {_fmt(ry)}l5 {fault_h / 2}l-5 {fault_h / 2}z" '
                f'fill="{colour}"/>'
            )
        if span.stop is not None:
            out.append(
                f'<path d="M{_fmt(x1)} {_fmt(ry)}l-5 {fault_h / 2}l5 {fault_h / 2}z" '
                f'fill="{colour}"/>'
            )
        if span.applied:
            out.append(
                f'<path d="{_ticks(span.applied, scale, ry + fault_h - 3, 3)}" stroke="{colour}"/>'
            )
        out.append(
            f'<text x="{_fmt(x0 + 7)}" y="{_fmt(ry + fault_h - 2)}" class="fl">'
            f"{esc(span.label[:24])}</text></g>"
        )
    y += rows * (fault_h + 2) + 6

    lane_label("actions", y)
    last_label_x = -1e9
    last_column = -1
    for t, action, detail in digest.actions:
        x = scale.x(t)
        if round(x) == last_column:
            continue  # one mark per pixel column
        last_column = round(x)
        out.append(
            f'<path d="M{_fmt(x)} {_fmt(y + 2)}l4 5l-4 5l-4 -5z" class="ac">'
            f"<title>{esc(f'{t:.3f} s {action} {detail}')}</title></path>"
        )
        if x - last_label_x >= 60:
            out.append(
                f'<text x="{_fmt(x + 5)}" y="{_fmt(y + 11)}" class="fl">{esc(action[:14])}</text>'
            )
            last_label_x = x
    y += LANE_H + 6

    # The time axis, with the failing evidence marked on it.
    out.append(
        f'<line x1="{LABEL_W}" x2="{LABEL_W + PLOT_W}" y1="{_fmt(y)}" y2="{_fmt(y)}" class="ax"/>'
    )
    step = _nice_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        x = scale.x(tick)
        label = f"{tick:g}"
        out.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(y)}" y2="{_fmt(y + 4)}" '
            f'class="ax"/><text x="{_fmt(x)}" y="{_fmt(y + 14)}" class="tk">{label}</text>'
        )
        tick += step
    out.append(f'<text x="{LABEL_W - 6}" y="{_fmt(y + 14)}" class="ll">t (s)</text>')
    for t, what in failing_evidence:
        x = scale.x(t)
        out.append(
            f'<path d="M{_fmt(x)} {_fmt(y)}l-4 -7h8z" class="ev">'
            f"<title>{esc(f'{t:.3f} s: {what}')}</title></path>"
        )
    y += 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{_fmt(y)}" '
        f'viewBox="0 0 {WIDTH} {_fmt(y)}" role="img" class="tl">'
        f"<style>{SVG_CSS}</style>{''.join(out)}</svg>"
    )


def legend() -> str:
    def chips(colours: dict[str, str]) -> str:
        return "".join(
            f'<span class="chip"><i style="background:{c}"></i>{esc(s)}</span>'
            for s, c in colours.items()
        )

    faults = "".join(
        f'<span class="chip"><i style="background:{c}"></i>{esc(s)} fault</span>'
        for s, c in FAULT_COLOURS.items()
    )
    return (
        f'<div class="legend"><b>Viewer</b> {chips(VIEWER_COLOURS)}</div>'
        f'<div class="legend"><b>Primary</b> {chips(STREAM_COLOURS)} '
        f'<span class="chip"><i style="background:{UNKNOWN_COLOUR}"></i>other</span></div>'
        f'<div class="legend"><b>Marks</b> {faults}'
        '<span class="chip"><i style="background:#0d47a1;width:2px"></i>REQ_KEYFRAME sent</span>'
        '<span class="chip"><i style="background:#1b5e20;height:4px"></i>pictures rendered'
        '</span><span class="chip"><i style="background:#37474f"></i>action</span>'
        '<span class="chip"><i style="background:#c62828"></i>failing evidence</span>'
        '<span class="chip">eN: epoch N</span></div>'
    )


# --- the page ---------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212121;max-width:1200px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:14px 0 6px}
code,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}
.v{color:#fff;font-weight:600;padding:1px 6px;border-radius:3px;font-size:12px;
white-space:nowrap}
.seed{font-size:18px;background:#fff8e1;border:1px solid #ffe082;padding:8px 12px;
display:inline-block;border-radius:4px;margin:6px 0}
.kv td:first-child{color:#616161}
details.sc{border:1px solid #ddd;border-radius:4px;margin:8px 0;padding:4px 10px}
details.sc>summary{cursor:pointer;font-size:15px;padding:4px 0}
.warn{color:#b71c1c}.muted{color:#757575}
.legend{font-size:12px;margin:2px 0}.chip{margin-right:10px;white-space:nowrap}
.chip i{display:inline-block;width:12px;height:10px;margin-right:3px;vertical-align:middle}
svg.tl{display:block;margin:6px 0;max-width:100%;height:auto}
ul.ev{margin:2px 0 6px;padding-left:20px;font-size:12.5px}
"""

# Inside each picture, so that a picture saved on its own still reads.
SVG_CSS = (
    "text{font-family:system-ui,sans-serif}.ll{font-size:11px;text-anchor:end;fill:#424242}"
    ".tk{font-size:10px;text-anchor:middle;fill:#424242}.el,.fl{font-size:9px;fill:#212121}"
    ".bg{fill:#fafafa;stroke:#e0e0e0}.ep{stroke:#212121;stroke-width:1}"
    ".kf{stroke:#0d47a1;stroke-width:1.2}.ac{fill:#37474f}.ax{stroke:#616161}.ev{fill:#c62828}"
)

SCRIPT = """
function setAll(open){document.querySelectorAll('details.sc').forEach(function(d){d.open=open;});}
"""


def badge(verdict: object) -> str:
    text = str(verdict)
    colour = VERDICT_COLOURS.get(text, UNKNOWN_COLOUR)
    return f'<span class="v" style="background:{colour}">{esc(text)}</span>'


def _link(run_dir: Path, target: object, label: str) -> str:
    if not target:
        return f'<span class="muted">no {esc(label)}</span>'
    path = Path(str(target))
    relative = os.path.relpath(path if path.is_absolute() else run_dir / path, run_dir)
    href = urllib.parse.quote(Path(relative).as_posix())
    missing = "" if (run_dir / relative).exists() else ' <span class="warn">(missing)</span>'
    return f'<a href="{esc(href)}">{esc(label)}</a> <code>{esc(relative)}</code>{missing}'


def _header(run_dir: Path, report: dict[str, Any]) -> str:
    run = report.get("run", {})
    totals = report.get("totals", {})
    seed = run.get("seed")
    versions = run.get("versions", {}) or {}
    backends = run.get("codec_backends", []) or []
    rows = [
        ("started", run.get("started")),
        ("duration", f"{run.get('duration', '?')} s"),
        ("command", run.get("command", "")),
        ("codec backends", ", ".join(map(str, backends)) or "none reported"),
        ("run directory", str(run_dir)),
    ]
    rows += [(f"version: {k}", v) for k, v in versions.items()]
    table = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    failed = totals.get("failed", 0)
    parts = [
        f"<h1>LVS run {esc(run.get('id', '?'))}</h1>",
        f"<p>outcome {badge(report.get('outcome', '?'))}</p>",
        f'<div class="seed">seed <b>{esc(seed)}</b> &mdash; re-run with '
        f"<code>harness run --seed {esc(seed)}</code></div>",
        f"<p><b>{esc(totals.get('scenarios', 0))}</b> scenarios: "
        f"{badge('PASS')} {esc(totals.get('passed', 0))} &nbsp; "
        f"{badge('FAIL')} {esc(failed)} &nbsp; "
        f"{badge('ERROR')} {esc(totals.get('errors', 0))} &nbsp; "
        f"{badge('BROKEN')} {esc(totals.get('broken', 0))} &nbsp; "
        f"{badge('NOT_APPLICABLE')} {esc(totals.get('not_applicable', 0))}</p>",
        f'<table class="kv">{table}</table>',
    ]
    if run.get("interrupted"):
        parts.insert(
            1,
            f'<h2 class="warn">{badge("INTERRUPTED")} The run was interrupted: this report '
            "covers only the scenarios that finished; the others are shown as ERROR.</h2>",
        )
    broken = report.get("broken_files", []) or []
    if broken:
        items = "".join(
            f"<li><code>{esc(b.get('file'))}</code>: <pre>{esc(b.get('error'))}</pre></li>"
            for b in broken
        )
        parts.append(f'<h2 class="warn">Broken scenario files ({len(broken)})</h2><ul>{items}</ul>')
    return "".join(parts)


def _matrix(report: dict[str, Any], anchors: dict[str, str]) -> str:
    requirements: dict[str, Any] = report.get("requirements", {}) or {}
    rows = []
    for req_id, entry in requirements.items():
        decided = []
        for s in entry.get("scenarios", []):
            name = str(s.get("scenario"))
            anchor = anchors.get(name)
            label = f'<a href="#{anchor}">{esc(name)}</a>' if anchor else esc(name)
            decided.append(f"{badge(s.get('status'))} {label}")
        rows.append(
            f'<tr id="req-{esc(req_id)}"><td><b>{esc(req_id)}</b></td>'
            f"<td>{badge(entry.get('verdict'))}</td><td>{esc(entry.get('rule', ''))}</td>"
            f"<td>{'<br>'.join(decided) or '<span class=muted>none</span>'}</td></tr>"
        )
    counts: dict[str, int] = {}
    for entry in requirements.values():
        verdict = str(entry.get("verdict"))
        counts[verdict] = counts.get(verdict, 0) + 1
    summary = " ".join(f"{badge(v)} {n}" for v, n in sorted(counts.items()))
    return (
        f"<h2>Requirements ({len(requirements)})</h2><p>{summary}</p>"
        "<table><tr><th>ID</th><th>verdict</th><th>rule</th><th>decided by</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _evidence_t(t: object, digest: TraceDigest, clock: float) -> str:
    """An evidence time (s since run start) as seconds from the trace's first record."""
    if not isinstance(t, int | float):
        return "&mdash;"
    if digest.origin is None:
        return f"{t:.3f}"
    return (
        f'<span title="{t:.6f} s since the run started">'
        f"+{digest.rel(float(t) + clock):.3f} s</span>"
    )


def _monotonic_at_start(report: dict[str, Any]) -> float:
    """The run's zero on the traces' clock (report.json's time base; 0 for older reports)."""
    clock = (report.get("run", {}) or {}).get("clock", {}) or {}
    value = clock.get("monotonic_at_start", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def _scenario(
    run_dir: Path,
    index: int,
    scenario: dict[str, Any],
    digest: TraceDigest,
    legend_html: str,
    clock: float = 0.0,
) -> str:
    verdict = scenario.get("verdict")
    is_open = " open" if verdict != "PASS" else ""
    covers = ", ".join(map(str, scenario.get("covers", []) or []))
    parts = [
        f'<details class="sc" id="s-{index}"{is_open}><summary>{badge(verdict)} '
        f"<b>{esc(scenario.get('name'))}</b> "
        f'<span class="muted">{esc(scenario.get("duration"))} s</span></summary>',
        '<table class="kv">',
        f"<tr><td>file</td><td><code>{esc(scenario.get('path'))}</code></td></tr>",
        f"<tr><td>seed</td><td>{esc(scenario.get('seed'))}</td></tr>",
        f"<tr><td>host CPU wait</td><td>{esc(scenario.get('cpu_wait', 0))} s "
        '<span class="muted">(left out of time limits, PROTOCOL.md 10.1)</span></td></tr>',
        f"<tr><td>covers</td><td>{esc(covers) or '&mdash;'}</td></tr>",
        f"<tr><td>backends</td><td>{esc(json.dumps(scenario.get('backends', {})))}</td></tr>",
        f"<tr><td>files</td><td>{_link(run_dir, scenario.get('trace'), 'trace.jsonl')}<br>"
        f"{_link(run_dir, scenario.get('pcap'), 'wire.pcapng')}</td></tr>",
        *(
            f"<tr><td>{esc(role)}</td><td><code>{esc(logs.get('command'))}</code><br>"
            f"{_link(run_dir, logs.get('stdout'), 'stdout')}<br>"
            f"{_link(run_dir, logs.get('stderr'), 'stderr')}</td></tr>"
            for role, logs in (scenario.get("testees") or {}).items()
        ),
        "</table>",
    ]
    if scenario.get("not_applicable"):
        parts.append(f"<p>not run: {esc(scenario['not_applicable'])}</p>")
    problems = scenario.get("problems", []) or []
    if problems:
        items = "".join(f"<li><pre>{esc(p)}</pre></li>" for p in problems)
        parts.append(f'<h3 class="warn">Problems</h3><ul>{items}</ul>')

    failing: list[tuple[float, str]] = []
    rows = []
    for verdict_entry in scenario.get("requirements", []) or []:
        req = verdict_entry.get("requirement")
        evidence = verdict_entry.get("evidence", []) or []
        items = "".join(
            f"<li>{_evidence_t(e.get('t'), digest, clock)} <code>{esc(e.get('where', ''))}</code> "
            f"{esc(e.get('what', ''))}</li>"
            for e in evidence
        )
        if verdict_entry.get("status") == "FAIL" and digest.origin is not None:
            failing += [
                (digest.rel(float(e["t"]) + clock), f"{req}: {e.get('what', '')}")
                for e in evidence
                if isinstance(e.get("t"), int | float)
            ]
        rows.append(
            f'<tr><td><a href="#req-{esc(req)}">{esc(req)}</a></td>'
            f"<td>{badge(verdict_entry.get('status'))}</td>"
            f"<td>{esc(verdict_entry.get('summary', ''))}"
            f"{f'<ul class=ev>{items}</ul>' if items else ''}</td></tr>"
        )
    if rows:
        parts.append(
            "<h3>Requirements</h3><table><tr><th>ID</th><th>status</th>"
            f"<th>summary and evidence (t from the trace's first record)</th></tr>"
            f"{''.join(rows)}</table>"
        )

    parts.append("<h3>Timeline picture</h3>")
    if digest.problem is not None:
        parts.append(f'<p class="warn">{esc(digest.problem)}</p>')
    else:
        notes = [
            f"{digest.records} records, {digest.frames} frames, "
            f"{digest.end:.3f} s from the first record"
        ]
        if digest.malformed:
            shown = ", ".join(map(str, digest.malformed[:MAX_NOTED_LINES]))
            more = "…" if len(digest.malformed) > MAX_NOTED_LINES else ""
            notes.append(
                f'<span class="warn">{len(digest.malformed)} malformed line(s) skipped '
                f"(line {shown}{more})</span>"
            )
        if digest.extra_viewers:
            notes.append(f"{len(digest.extra_viewers)} more viewer(s) not drawn")
        dropped = digest.primary.dropped + sum(v.states.dropped for v in digest.viewers.values())
        if dropped:
            notes.append(f"{dropped} state changes past the drawing limit not drawn")
        parts.append(f'<p class="muted">{"; ".join(notes)}</p>')
        parts.append(timeline_svg(digest, failing[:200]))
        parts.append(legend_html)

    steps = scenario.get("timeline", []) or []
    if steps:
        step_rows = "".join(
            f"<tr><td>{esc(s.get('t'))}</td><td>{esc(s.get('line', ''))}</td>"
            f"<td><code>{esc(s.get('step', ''))}</code></td>"
            f"<td>{esc(s['waited']) + ' s' if 'waited' in s else ''}</td></tr>"
            for s in steps
        )
        parts.append(
            "<h3>Executed steps</h3><table><tr><th>t (s since the run started)</th><th>line</th>"
            f"<th>step</th><th>waited</th></tr>{step_rows}</table>"
        )
    parts.append("</details>")
    return "".join(parts)


def render_html(run_dir: Path, report: dict[str, Any]) -> str:
    scenarios: list[dict[str, Any]] = report.get("scenarios", []) or []
    anchors = {str(s.get("name")): f"s-{i}" for i, s in enumerate(scenarios)}
    legend_html = legend()
    sections = []
    for index, scenario in enumerate(scenarios):
        trace = scenario.get("trace")
        path = None if not trace else Path(str(trace))
        if path is not None and not path.is_absolute():
            path = run_dir / path
        digest = read_trace_digest(path)
        sections.append(
            _scenario(run_dir, index, scenario, digest, legend_html, _monotonic_at_start(report))
        )
    run_id = (report.get("run", {}) or {}).get("id", "?")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>LVS run {esc(run_id)}</title><style>{CSS}</style>"
        f"<script>{SCRIPT}</script></head><body>"
        f"{_header(run_dir, report)}{_matrix(report, anchors)}"
        f"<h2>Scenarios ({len(scenarios)})</h2>"
        '<p><button onclick="setAll(true)">expand all</button> '
        '<button onclick="setAll(false)">collapse all</button> '
        '<span class="muted">failed scenarios start open</span></p>'
        f"{''.join(sections)}</body></html>\n"
    )


def write_html(run_dir: Path, report: dict[str, Any]) -> Path:
    """Write run_dir/report.html from report.json's content and the traces; return its path."""
    path = run_dir / "report.html"
    path.write_text(render_html(run_dir, report), encoding="utf-8")
    return path
