"""A soak's report: soak.json (schema-versioned), soak.html (self-contained), junit.xml.

soak.html draws every sampled figure as an inline SVG time series with the
nemesis steps shaded where they were active, then the per-window verdicts and
every FAIL with its evidence and its reproduction scenario. JUnit has one
testcase per requirement (its overall verdict) and one per drift limit.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from harness.checks.verdict import Status

if TYPE_CHECKING:
    from harness.soak.run import SoakResult

SCHEMA_VERSION = 1
WIDTH, HEIGHT, PAD = 760, 150, 36


def soak_dict(result: SoakResult) -> dict[str, Any]:
    return {
        "schema": "lvs-soak",
        "schema_version": SCHEMA_VERSION,
        "profile": result.profile.as_dict(),
        "seed": result.seed,
        "verdict": result.verdict,
        "duration": round(result.duration, 3),
        "records": result.records,
        "late_records": result.late_records,
        "checker_cpu_s": round(result.checker_cpu_s, 3),
        "checker_cpu_share": round(result.checker_cpu_s / max(result.duration, 1e-9), 4),
        "disk": result.disk,
        "allocator": result.allocator,
        "problems": result.problems,
        "requirements": [v.as_dict() for v in result.verdicts],
        # With an external peer: who was judged, the reference peers' own verdicts (a FAIL
        # there is a harness fault) and the testee's FAILs it made INCONCLUSIVE.
        "testees": result.testees,
        "harness_requirements": [v.as_dict() for v in result.harness_verdicts],
        "harness_faults": result.harness_faults,
        "inconclusive": result.inconclusive,
        "drift": [d.as_dict() for d in result.drift],
        # Beside a testee: the limits on the harness's own processes (a FAIL: harness fault).
        "harness_drift": [d.as_dict() for d in result.harness_drift],
        "windows": [w.as_dict() for w in result.windows],
        "fails": result.fails,
        "schedule": result.schedule.as_dict(),
        "executed": result.executed,
        "figures": result.figures,
    }


def write_reports(result: SoakResult) -> dict[str, str]:
    from harness.soak.shrink import write_reproductions

    directory = result.directory
    write_reproductions(result)
    data = soak_dict(result)
    paths = {
        "soak.json": directory / "soak.json",
        "soak.html": directory / "soak.html",
        "junit.xml": directory / "junit.xml",
    }
    paths["soak.json"].write_text(json.dumps(data, indent=1, default=str))
    paths["soak.html"].write_text(render_html(data))
    paths["junit.xml"].write_bytes(render_junit(data))
    return {name: str(path) for name, path in paths.items()}


# --- JUnit ----------------------------------------------------------------------


def render_junit(data: dict[str, Any]) -> bytes:
    cases: list[tuple[str, str, str, str]] = []  # classname, name, status, message
    for v in data["requirements"]:
        cases.append(("soak.requirements", v["requirement"], v["status"], v["summary"]))
    for d in data["drift"]:
        cases.append(("soak.drift", d["name"], d["status"], d["summary"]))
    suite = ET.Element(
        "testsuite",
        name=f"soak-{data['profile']['name']}-seed-{data['seed']}",
        tests=str(len(cases)),
        failures=str(sum(1 for c in cases if c[2] == Status.FAIL.value)),
        skipped=str(sum(1 for c in cases
                        if c[2] in (Status.NOT_OBSERVED.value, Status.INCONCLUSIVE.value))),
        errors=str(len(data["problems"]) + len(data.get("harness_faults", []))),
        time=f"{data['duration']:.3f}",
    )
    for classname, name, status, message in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
        if status == Status.FAIL.value:
            ET.SubElement(case, "failure", message=message).text = message
        elif status in (Status.NOT_OBSERVED.value, Status.INCONCLUSIVE.value):
            ET.SubElement(case, "skipped", message=f"{status}: {message}")
    for problem in data["problems"]:
        case = ET.SubElement(suite, "testcase", classname="soak.harness", name="problem")
        ET.SubElement(case, "error", message=problem).text = problem
    for fault in data.get("harness_faults", []):
        message = f"{fault['requirement']} FAILed on {fault['peers']}: {fault['summary']}"
        case = ET.SubElement(suite, "testcase", classname="soak.harness",
                             name=f"harness fault {fault['id']}")
        ET.SubElement(case, "error", message=message).text = message
    suites = ET.Element("testsuites")
    suites.append(suite)
    out: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return out


# --- HTML -----------------------------------------------------------------------


def svg_series(
    points: list[tuple[float, float]],
    duration: float,
    shaded: list[tuple[float, float, str]],
    *,
    title: str,
    marks: list[tuple[float, str]] | None = None,
) -> str:
    """One time series as an SVG line, the given intervals shaded behind it."""
    if not points:
        return ""
    values = [v for _, v in points]
    low, high = min(values), max(values)
    if high == low:
        high = low + 1
    span = max(duration, points[-1][0], 1e-9)

    def x(t: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * t / span

    def y(v: float) -> float:
        return HEIGHT - PAD / 2 - (HEIGHT - PAD) * (v - low) / (high - low)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img"><title>{html.escape(title)}</title>']
    for start, end, label in shaded:
        parts.append(
            f'<rect class="fault" x="{x(start):.1f}" y="0" '
            f'width="{max(1.0, x(end) - x(start)):.1f}" height="{HEIGHT}">'
            f"<title>{html.escape(label)}</title></rect>"
        )
    for t, label in marks or []:
        parts.append(f'<line class="fail" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="0" y2="{HEIGHT}">'
                     f'<title>{html.escape(label)}</title></line>')
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    parts.append(f'<polyline class="series" points="{line}"/>')
    parts.append(f'<text x="2" y="12">{high:.4g}</text>')
    parts.append(f'<text x="2" y="{HEIGHT - 4}">{low:.4g}</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" text-anchor="end">{span:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1000px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;
font-size:13px;text-align:left}.PASS{background:#dfd}.FAIL{background:#fbb}
.NOT_OBSERVED{background:#eee}.INCONCLUSIVE{background:#fe9}
svg{background:#fafafa;border:1px solid #ddd;display:block}
svg .series{fill:none;stroke:#2458b3;stroke-width:1.5}svg .fault{fill:#f5a623;opacity:.18}
svg .fail{stroke:#c00;stroke-width:1.5}svg text{font-size:10px;fill:#555}
pre{background:#f4f4f4;padding:.5em;overflow:auto;font-size:12px}
"""


def render_html(data: dict[str, Any]) -> str:
    esc = html.escape
    duration = float(data["duration"])
    shaded = [
        (s["at"], s["at"] + max(s["duration"], 0.2), f"{s['id']} {s['kind']}")
        for s in data["schedule"]["steps"]
    ]
    marks = [(f["start"], f["id"]) for f in data["fails"]]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>soak {esc(data['profile']['name'])} seed {data['seed']}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Soak {esc(data['profile']['name'])}: <span class='{data['verdict']}'>"
        f"{data['verdict']}</span></h1>",
        f"<p>seed {data['seed']}, {duration:.1f} s, {data['records']} records "
        f"({data['late_records']} late), {len(data['windows'])} windows of "
        f"{data['profile']['window']:g} s, checker CPU {100 * data['checker_cpu_share']:.1f} % "
        f"of a core, trace segments on disk {data['disk'].get('segments_bytes', 0) / 1e6:.2f} MB "
        f"({data['disk'].get('dropped_bytes', 0) / 1e6:.2f} MB dropped after their windows "
        f"were checked).</p>",
    ]
    testees = data.get("testees") or {}
    if testees:
        out.append(f"<h2>Testee</h2><p>judged: {esc(str(testees.get('judged', '')))}; the "
                   f"reference peers ({esc(str(testees.get('harness', '')))}) are judged apart, "
                   "and a FAIL of theirs is a harness fault that makes the testee's verdicts "
                   "of its window INCONCLUSIVE.</p><ul>")
        for role, entry in (testees.get("processes") or {}).items():
            out.append(f"<li>{esc(role)}: <code>{esc(entry['command'])}</code> (stdout "
                       f"{esc(entry['stdout'])}, stderr {esc(entry['stderr'])})</li>")
        out.append("</ul>")
    left_out = data["schedule"].get("left_out") or {}
    if left_out:
        out.append("<h2>Nemesis steps not drawn</h2><ul>")
        out += [f"<li>{esc(k)}: {esc(r)}</li>" for k, r in left_out.items()]
        out.append("</ul>")
    if data["problems"]:
        out.append("<h2>Problems</h2><ul>")
        out += [f"<li>{esc(p)}</li>" for p in data["problems"]]
        out.append("</ul>")
    out.append("<h2>Drift limits</h2><table>")
    out.append("<tr><th>limit</th><th>verdict</th><th>measured</th></tr>")
    for d, whose in [(d, "") for d in data["drift"]] + [
            (d, " (the harness's own process)") for d in data.get("harness_drift", [])]:
        out.append(f"<tr class='{d['status']}'><td>{esc(d['name'] + whose)}</td>"
                   f"<td>{d['status']}</td><td>{esc(d['summary'])}</td></tr>")
    out.append("</table>")
    out.append("<h2>Requirements (whole run)</h2><table><tr><th>ID</th><th>verdict</th>"
               "<th>summary</th></tr>")
    for v in data["requirements"]:
        out.append(f"<tr class='{v['status']}'><td>{esc(v['requirement'])}</td>"
                   f"<td>{v['status']}</td><td>{esc(v['summary'])}</td></tr>")
    out.append("</table>")
    if data.get("harness_requirements"):
        out.append(f"<h2>The reference peers (harness health: "
                   f"{esc(str(testees.get('harness', '')))})</h2><table><tr><th>ID</th>"
                   "<th>verdict</th><th>summary</th></tr>")
        for v in data["harness_requirements"]:
            out.append(f"<tr class='{v['status']}'><td>{esc(v['requirement'])}</td>"
                       f"<td>{v['status']}</td><td>{esc(v['summary'])}</td></tr>")
        out.append("</table>")
    out.append("<h2>Figures</h2><p>Shaded: nemesis steps while active; red lines: windows "
               "with a FAIL.</p>")
    for name, series in data["figures"].get("series", {}).items():
        out.append(f"<h3>{esc(name)} ({esc(series['unit'])})</h3>")
        out.append(svg_series([tuple(p) for p in series["points"]], duration, shaded,
                              title=name, marks=marks))
    out.append("<h2>Windows</h2><table><tr><th>#</th><th>from</th><th>to</th><th>records</th>"
               "<th>PASS</th><th>FAIL</th><th>NOT_OBSERVED</th><th>nemesis steps</th></tr>")
    for w in data["windows"]:
        cls = "FAIL" if w["fails"] else "PASS"
        c = w["counts"]
        out.append(
            f"<tr class='{cls}'><td>{w['index']}</td><td>{w['start']:.1f}</td>"
            f"<td>{w['end']:.1f}</td><td>{w['records']}</td><td>{c.get('PASS', 0)}</td>"
            f"<td>{c.get('FAIL', 0)}</td><td>{c.get('NOT_OBSERVED', 0)}</td>"
            f"<td>{esc(', '.join(w['faults']))}</td></tr>"
        )
    out.append("</table>")
    out.append("<h2>FAILs</h2>")
    if not (data["fails"] or data.get("harness_faults") or data.get("inconclusive")):
        out.append("<p>none</p>")
    sections = [(f, "") for f in data["fails"]]
    sections += [(f, "harness fault") for f in data.get("harness_faults", [])]
    sections += [(f, "INCONCLUSIVE") for f in data.get("inconclusive", [])]
    for f, label in sections:
        tag = f" [{label}]" if label else ""
        out.append(f"<h3 id='{esc(f['id'])}'>{esc(f['id'])}{esc(tag)}: {esc(f['summary'])}</h3>")
        out.append(f"<p>evidence from: {esc(str(f.get('peer', 'reference')))} "
                   f"({esc(str(f.get('peers', '')))})"
                   + (f"; {esc(f['reason'])}" if f.get("reason") else "") + "</p>")
        host = f.get("host", {})
        if host:
            out.append("<p>host during the window: " + ", ".join(
                f"{esc(k)} max {v:.3g}" for k, v in host.items()) + "</p>")
        out.append("<ul>")
        out += [f"<li>{e['t']} s {esc(str(e.get('where', '')))}: {esc(str(e['what']))}</li>"
                for e in f["evidence"]]
        out.append("</ul>")
        if f.get("reproduction"):
            out.append(f"<p>reproduction: <code>{esc(f['reproduction'])}</code>; shrink it with "
                       f"<code>harness soak --shrink {esc(f['shrink_arg'])}</code></p>")
            out.append(f"<pre>{esc(f.get('scenario_text', ''))}</pre>")
    out.append("<h2>Nemesis schedule</h2><pre>")
    for s in data["schedule"]["steps"]:
        acts = "; ".join(f"{a['do']} {json.dumps(a['with'])}" for a in s["begin"])
        out.append(esc(f"{s['at']:9.3f} +{s['duration']:7.3f}  {s['id']} {s['kind']}: {acts}"))
    out.append("</pre></body></html>")
    return "\n".join(out)
