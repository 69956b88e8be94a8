"""certificate.html and badge.svg: a certificate for people, from certificate.json's content.

The page is self-contained (inline style, no script, no external asset) and uses the
run report's look (harness/report/html.py). Everything shown from the certificate goes
through `esc`: the testee's command, its name for itself and every evidence string come
from outside the harness. Links to a scenario's trace.jsonl and result.json are relative
to the certificate's folder, so the folder can be moved or published as a whole.

The badge is a shields-style two-part SVG ("LVS viewer | CONFORMANT"), coloured by grade.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from harness.certify.certificate import (
    BADGE_NAME,
    HTML_NAME,
    check_certificate,
    write_certificate_json,
)
from harness.certify.grade import Grade
from harness.report.html import CSS, UNKNOWN_COLOUR, badge, esc
from harness.report.html import _link as file_link

GRADE_COLOURS: dict[str, str] = {
    Grade.CONFORMANT.value: "#2e7d32",
    Grade.CONFORMANT_WITH_WARNINGS.value: "#9e9d24",
    Grade.NOT_CONFORMANT.value: "#c62828",
    Grade.INCONCLUSIVE.value: "#ef8f00",
}
LEVEL_COLOURS = {"MUST": "#37474f", "SHOULD": "#546e7a", "MAY": "#90a4ae"}
EXPECTED_MARK = '<span class="xf" title="expected failure (known issue)">expected</span>'
# Requirement statuses whose scenario evidence starts unfolded.
OPEN_STATUSES = frozenset({"FAIL", "INCONCLUSIVE"})

CERT_CSS = """
.grade{font-size:20px;padding:4px 12px}
.xf{background:#eceff1;border:1px dashed #607d8b;border-radius:3px;padding:0 5px;font-size:12px}
details.rq>summary{cursor:pointer}
td.lv{font-size:12px;font-weight:600}
"""


def grade_chip(grade: object, *, big: bool = False) -> str:
    text = str(grade)
    colour = GRADE_COLOURS.get(text, UNKNOWN_COLOUR)
    size = " grade" if big else ""
    return f'<span class="v{size}" style="background:{colour}">{esc(text)}</span>'


def level_chip(level: object) -> str:
    colour = LEVEL_COLOURS.get(str(level), UNKNOWN_COLOUR)
    return f'<span class="v" style="background:{colour}">{esc(level)}</span>'


def testee_name(cert: dict[str, Any]) -> str:
    """How the certificate names its testee: its own name, else its command or address."""
    testee = cert["testee"]
    name = testee.get("implementation") or testee.get("command") or testee.get("address")
    version = testee.get("version")
    label = str(name or f"unnamed {testee['role']}")
    return f"{label} {version}" if version else label


def scenario_anchor(index: int) -> str:
    return f"s-{index}"


def result_path(scenario: dict[str, Any]) -> str | None:
    """The scenario's result.json: as stated, else the one the runner writes beside the trace."""
    if scenario.get("result"):
        return str(scenario["result"])
    trace = scenario.get("trace")
    return str(PurePosixPath(str(trace)).with_name("result.json")) if trace else None


# --- the page ---------------------------------------------------------------------------


def _kv(rows: Iterable[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv">{cells}</table>'


def _or_none(value: object) -> str:
    return esc(value) if value not in (None, "") else '<span class="muted">none</span>'


def _header(cert: dict[str, Any], directory: Path) -> str:
    testee, harness, run = cert["testee"], cert["harness"], cert["run"]
    backends = ", ".join(f"{k}: {v}" for k, v in run["codec_backends"].items())
    rows: list[tuple[str, object]] = [
        ("role", esc(testee["role"])),
        ("implementation", _or_none(testee["implementation"])),
        ("version", _or_none(testee["version"])),
        ("command", f"<code>{_or_none(testee['command'])}</code>"),
        ("address", _or_none(testee["address"])),
        ("date", esc(cert["date"])),
        ("harness", esc(harness["version"])),
        ("specification", esc(harness["spec"])),
        ("python", esc(harness["python"])),
        ("run", esc(run["id"])),
        ("codec backends", esc(backends) or '<span class="muted">none reported</span>'),
        (
            "scenarios",
            f"{esc(run['scenarios_run'])} run, "
            f"{esc(run['scenarios_not_applicable'])} not applicable to a {esc(testee['role'])}",
        ),
        ("duration", f"{esc(run['duration'])} s"),
        ("strict", "yes: a SHOULD failure counts as a MUST failure" if cert["strict"] else "no"),
    ]
    if (directory / "report.html").exists():
        rows.append(("full run report", file_link(directory, "report.html", "report.html")))
    seed = run["seed"]
    return (
        f"<h1>LVS certificate: {esc(testee_name(cert))}</h1>"
        f"<p>{esc(testee['role'])} &mdash; {grade_chip(cert['grade'], big=True)}</p>"
        f'<div class="seed">seed <b>{esc(seed)}</b> &mdash; repeat with '
        f"<code>harness certify {esc(testee['role'])} --seed {esc(seed)} ...</code></div>"
        f"{_kv(rows)}"
    )


def _counts(requirements: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for entry in requirements:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    expected = sum(1 for e in requirements if e["expected_failure"])
    shown = " &nbsp; ".join(f"{badge(s)} {n}" for s, n in sorted(counts.items()))
    if expected:
        shown += f" &nbsp; {EXPECTED_MARK} {expected}"
    return f"<p>{shown}</p>"


def _seconds(t: object) -> str:
    """An evidence time (seconds since the run started), or a dash for none."""
    return f"{t:.3f} s" if isinstance(t, int | float) else "&mdash;"


def _evidence(items: list[dict[str, Any]]) -> str:
    if not items:
        return ""
    rows = "".join(
        f"<li>{_seconds(e['t'])} <code>{esc(e['where'])}</code> {esc(e['what'])}</li>"
        for e in items
    )
    return f'<ul class="ev">{rows}</ul>'


def _requirement_row(directory: Path, entry: dict[str, Any], anchors: dict[str, str]) -> str:
    decided = []
    for s in entry["scenarios"]:
        anchor = anchors.get(s["name"])
        name = f'<a href="#{anchor}">{esc(s["name"])}</a>' if anchor else esc(s["name"])
        mark = f" {EXPECTED_MARK}" if s.get("expected_failure") else ""
        decided.append(
            f"<li>{badge(s['status'])}{mark} <b>{name}</b> {esc(s['summary'])}"
            f"{_evidence(s['evidence'])}{file_link(directory, s['trace'], 'trace.jsonl')}</li>"
        )
    known = entry["known_issue"]
    note = ""
    if entry["expected_failure"]:
        reason = f": {esc(known['reason'])} (until {esc(known['expires'])})" if known else ""
        note = f"<br>{EXPECTED_MARK}{reason}"
    is_open = " open" if entry["status"] in OPEN_STATUSES and not entry["expected_failure"] else ""
    detail = (
        f'<details class="rq"{is_open}><summary>{len(decided)} scenario(s)</summary>'
        f'<ul class="ev">{"".join(decided)}</ul></details>'
        if decided
        else '<span class="muted">no scenario judged it</span>'
    )
    return (
        f'<tr id="req-{esc(entry["id"])}"><td><b>{esc(entry["id"])}</b></td>'
        f'<td class="lv">{level_chip(entry["level"])}</td>'
        f"<td>{badge(entry['status'])}{note}</td><td>{esc(entry['rule'])}</td>"
        f"<td>{detail}</td></tr>"
    )


def _requirements(directory: Path, cert: dict[str, Any], anchors: dict[str, str]) -> str:
    requirements = cert["requirements"]
    rows = "".join(_requirement_row(directory, e, anchors) for e in requirements)
    return (
        f"<h2>Requirements ({len(requirements)})</h2>{_counts(requirements)}"
        "<table><tr><th>ID</th><th>level</th><th>status</th><th>rule</th>"
        f"<th>scenarios and evidence</th></tr>{rows}</table>"
    )


def _list(items: list[str]) -> str:
    if not items:
        return '<span class="muted">none</span>'
    return '<ul class="ev">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _scenarios(directory: Path, cert: dict[str, Any]) -> str:
    rows, skipped = [], []
    for index, s in enumerate(cert["scenarios"]):
        if not s["applicable"]:
            skipped.append(
                f'<tr id="{scenario_anchor(index)}"><td>{esc(s["name"])}</td>'
                f"<td>{esc(s['reason'])}</td></tr>"
            )
            continue
        duration = "&mdash;" if s["duration"] is None else f"{esc(s['duration'])} s"
        files = (
            f"{file_link(directory, s['trace'], 'trace.jsonl')}<br>"
            f"{file_link(directory, result_path(s), 'result.json')}"
        )
        rows.append(
            f'<tr id="{scenario_anchor(index)}"><td><b>{esc(s["name"])}</b></td>'
            f"<td>{badge(s['verdict'])}</td><td>{duration}</td><td>{files}</td>"
            f"<td>{_list(s['harness_faults'])}</td><td>{_list(s['problems'])}</td></tr>"
        )
    faults = sum(len(s["harness_faults"]) for s in cert["scenarios"])
    parts = [
        f"<h2>Scenarios run ({len(rows)})</h2>",
        f'<p class="{"warn" if faults else "muted"}">{faults} harness fault(s): a reference '
        "peer broke a rule, so that scenario judged nothing about the testee.</p>",
        "<table><tr><th>scenario</th><th>verdict</th><th>duration</th><th>files</th>"
        f"<th>harness faults</th><th>problems</th></tr>{''.join(rows)}</table>",
        f"<h2>Not applicable ({len(skipped)})</h2>",
    ]
    if skipped:
        parts.append(f"<table><tr><th>scenario</th><th>why</th></tr>{''.join(skipped)}</table>")
    else:
        parts.append('<p class="muted">every scenario applied</p>')
    return "".join(parts)


KNOWN_ISSUE_SECTIONS = (
    ("applied", "Applied: these failures were expected and did not weigh on the grade"),
    ("no_longer_occurring", "No longer occurring: the listed failure did not happen"),
    ("not_exercised", "Not exercised: no scenario the entry names decided its requirement"),
    ("expired", "Expired: ignored, their failures counted"),
)


def _known_issues(cert: dict[str, Any]) -> str:
    known = cert["known_issues"]
    if not any(known.get(key) for key, _ in KNOWN_ISSUE_SECTIONS):
        return '<h2>Known issues</h2><p class="muted">no known-issues file, or an empty one</p>'
    parts = ["<h2>Known issues</h2>"]
    for key, title in KNOWN_ISSUE_SECTIONS:
        entries = known.get(key) or []
        if not entries:
            continue
        rows = "".join(
            f"<tr><td>{esc(e['id'])}</td><td>{_or_none(e['scenario'])}</td>"
            f"<td>{esc(e['reason'])}</td><td>{esc(e['expires'])}</td></tr>"
            for e in entries
        )
        parts.append(
            f"<h3>{esc(title)} ({len(entries)})</h3><table><tr><th>ID</th><th>scenario</th>"
            f"<th>reason</th><th>expires</th></tr>{rows}</table>"
        )
    return "".join(parts)


def render_certificate_html(cert: dict[str, Any], directory: Path) -> str:
    """The page for a checked certificate whose files lie under `directory`."""
    anchors = {
        s["name"]: scenario_anchor(i) for i, s in enumerate(cert["scenarios"]) if s["applicable"]
    }
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>LVS certificate: {esc(testee_name(cert))} &mdash; {esc(cert['grade'])}</title>"
        f"<style>{CSS}{CERT_CSS}</style></head><body>"
        f"{_header(cert, directory)}{_requirements(directory, cert, anchors)}"
        f"{_scenarios(directory, cert)}{_known_issues(cert)}</body></html>\n"
    )


# --- the badge --------------------------------------------------------------------------

BADGE_LABEL_COLOUR = "#555"
BADGE_H = 20
BADGE_PAD = 6
BADGE_FONT = "Verdana,Geneva,DejaVu Sans,sans-serif"


def text_width(text: str) -> float:
    """About how wide `text` sets in 11 px Verdana (shields' font): capitals are wider."""
    width = 0.0
    for char in text:
        if char in " il.,:;|!'":
            width += 3.6
        elif char.isupper() or char.isdigit() or char in "mw":
            width += 7.6
        else:
            width += 6.4
    return width


def badge_svg(role: str, grade: str) -> str:
    """A shields-style badge: "LVS <role>" on grey, the grade on its colour."""
    label, value = f"LVS {role}", grade
    left = round(text_width(label) + 2 * BADGE_PAD)
    right = round(text_width(value) + 2 * BADGE_PAD)
    total = left + right
    colour = GRADE_COLOURS.get(grade, UNKNOWN_COLOUR)
    title = esc(f"{label}: {value}")

    def text(x: float, body: str) -> str:
        # A shadow one pixel below, then the text: shields' flat style.
        return (
            f'<text x="{x:.1f}" y="15" fill="#010101" fill-opacity=".3">{esc(body)}</text>'
            f'<text x="{x:.1f}" y="14" fill="#fff">{esc(body)}</text>'
        )

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{BADGE_H}" '
        f'role="img" aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="{BADGE_H}" rx="3" fill="#fff"/>'
        '</clipPath><g clip-path="url(#r)">'
        f'<rect width="{left}" height="{BADGE_H}" fill="{BADGE_LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="{BADGE_H}" fill="{colour}"/>'
        f'<rect width="{total}" height="{BADGE_H}" fill="url(#s)"/></g>'
        f'<g text-anchor="middle" font-family="{BADGE_FONT}" font-size="11">'
        f"{text(left / 2, label)}{text(left + right / 2, value)}</g></svg>\n"
    )


# --- files ------------------------------------------------------------------------------


def write_certificate_files(cert: dict[str, Any], directory: Path) -> list[Path]:
    """Check `cert` and write certificate.json, certificate.html and badge.svg into
    `directory`; return their paths. A certificate of the wrong shape is a one-line
    CertificateError and nothing is written."""
    check_certificate(cert)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = write_certificate_json(cert, directory)
    html_path = directory / HTML_NAME
    html_path.write_text(render_certificate_html(cert, directory), encoding="utf-8")
    badge_path = directory / BADGE_NAME
    badge_path.write_text(badge_svg(cert["testee"]["role"], cert["grade"]), encoding="utf-8")
    return [json_path, html_path, badge_path]
