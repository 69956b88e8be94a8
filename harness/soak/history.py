"""History across nights: one JSON per run in a folder, and a trend page over them.

`harness soak --history DIR` writes `DIR/<started>-seed<S>.json` (the run's
verdict, seed, profile, failed IDs and limits, drift slopes, latency
percentiles, checker cost and disk use) and renders `DIR/trend.html`: a table
with one row per night, and a small SVG line per drift slope and percentile
across the nights.
"""

from __future__ import annotations

import html
import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.soak.report import svg_series

if TYPE_CHECKING:
    from harness.soak.run import SoakResult

HISTORY_VERSION = 1


def entry(result: SoakResult) -> dict[str, Any]:
    series = result.figures.get("series", {})

    def overall(name: str) -> float | None:
        points = series.get(name, {}).get("points", [])
        return round(statistics.median(v for _, v in points), 3) if points else None

    return {
        "history_version": HISTORY_VERSION,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - result.duration)),
        "profile": result.profile.name,
        "seed": result.seed,
        "verdict": result.verdict,
        "duration": round(result.duration, 3),
        "viewers": result.profile.viewers,
        "failed_requirements": result.failed_requirements,
        "failed_limits": result.failed_limits,
        "fails": len(result.fails),
        "slopes": {d.limit.metric: d.slope_per_h for d in result.drift},
        "latency": {"p50_ms": overall("stream.p50_ms"), "p99_ms": overall("stream.p99_ms")},
        "checker_cpu_share": round(result.checker_cpu_s / max(result.duration, 1e-9), 4),
        "disk_bytes": result.disk.get("segments_bytes", 0),
        "report": str(result.directory / "soak.html"),
    }


def append_run(directory: Path, result: SoakResult) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = entry(result)
    stem = f"{data['started'].replace(':', '')}-seed{result.seed}"
    path = directory / f"{stem}.json"
    number = 1
    while path.exists():  # two runs in one second keep both
        number += 1
        path = directory / f"{stem}-{number}.json"
    path.write_text(json.dumps(data, indent=1))
    return render_trend(directory)


def load_history(directory: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a file that is not a run of ours
        if isinstance(data, dict) and data.get("history_version") == HISTORY_VERSION:
            runs.append(data)
    runs.sort(key=lambda r: (r["started"], r["seed"]))
    return runs


def render_trend(directory: Path) -> Path:
    runs = load_history(directory)
    esc = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>soak trend</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.PASS{background:"
        "#dfd}.FAIL{background:#fbb}.INCONCLUSIVE{background:#fe9}"
        "svg{background:#fafafa;border:1px solid #ddd}"
        "svg .series{fill:none;stroke:#2458b3;stroke-width:1.5}svg text{font-size:10px}"
        "</style></head><body>",
        f"<h1>Soak trend: {len(runs)} run(s)</h1>",
        "<table><tr><th>#</th><th>started (UTC)</th><th>profile</th><th>seed</th>"
        "<th>verdict</th><th>duration s</th><th>failed IDs</th><th>failed limits</th>"
        "<th>p50 ms</th><th>p99 ms</th><th>checker CPU</th><th>report</th></tr>",
    ]
    for i, r in enumerate(runs):
        out.append(
            f"<tr class='{r['verdict']}'><td>{i}</td><td>{esc(r['started'])}</td>"
            f"<td>{esc(r['profile'])}</td><td>{r['seed']}</td><td>{r['verdict']}</td>"
            f"<td>{r['duration']:.0f}</td><td>{esc(', '.join(r['failed_requirements']))}</td>"
            f"<td>{esc(', '.join(r['failed_limits']))}</td><td>{r['latency']['p50_ms']}</td>"
            f"<td>{r['latency']['p99_ms']}</td><td>{100 * r['checker_cpu_share']:.1f} %</td>"
            f"<td><a href='{esc(r['report'])}'>soak.html</a></td></tr>"
        )
    out.append("</table>")
    figures: dict[str, list[tuple[float, float]]] = {}
    for i, r in enumerate(runs):
        for metric, slope in r["slopes"].items():
            if slope is not None:
                figures.setdefault(f"slope {metric} (per hour)", []).append((i, slope))
        for name, value in r["latency"].items():
            if value is not None:
                figures.setdefault(f"latency {name}", []).append((i, value))
    out.append("<h2>Across runs</h2><p>x: run number (the table's #)</p>")
    for name, points in sorted(figures.items()):
        out.append(f"<h3>{esc(name)}</h3>")
        out.append(svg_series(points, max(len(runs) - 1, 1), [], title=name))
    out.append("</body></html>")
    path = directory / "trend.html"
    path.write_text("\n".join(out))
    return path
