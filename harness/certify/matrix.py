"""`harness certify matrix DIR...`: several certificates side by side in one index.html.

Like Autobahn|Testsuite's agent matrix: one column per certificate (an implementation in
a role), one row per requirement, each cell coloured by that certificate's status for the
requirement and linking to the requirement in that certificate's page. The grade and the
role of each column head it. Viewer and Primary certificates can share a matrix: a
requirement a certificate does not judge (another role's rule) leaves its cell blank.
Rows follow the catalogue's order, under its group headings.

Each argument is a certification's report folder (its certificate.json is read) or a
certificate file. A missing or malformed certificate is one line and exit status 4, and
nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.certify.certificate import HTML_NAME, CertificateError, load_certificate
from harness.certify.grade import EXIT_USAGE
from harness.certify.render import CERT_CSS, grade_chip, testee_name
from harness.report.html import CSS, UNKNOWN_COLOUR, VERDICT_COLOURS, badge, esc
from reference.protocol.requirements import BY_ID, CATALOGUE

INDEX_NAME = "index.html"
EXPECTED_COLOUR = "#ef9a9a"  # a FAIL the testee's known-issues file expected
# Catalogue order for rows; an ID outside the catalogue (a newer harness wrote it) goes last.
ORDER = {r.id: i for i, r in enumerate(CATALOGUE)}
OTHER_GROUP = "Not in this harness's catalogue"

MATRIX_CSS = """
table.mx td.c{text-align:center;padding:2px 6px;min-width:90px}
table.mx td.c a{color:#fff;text-decoration:none;font-weight:600;font-size:12px;display:block}
table.mx td.c.xf a{color:#212121}
table.mx td.blank{background:#fafafa}
table.mx th.col{text-align:center;font-weight:normal;min-width:120px}
table.mx tr.grp td{background:#eceff1;font-weight:600}
"""


@dataclass(frozen=True)
class Column:
    """One certificate in the matrix, and where its page lies relative to the index."""

    path: Path
    cert: dict[str, Any]
    href: str  # to certificate.html (or the certificate itself when no page was written)

    def requirement(self, requirement_id: str) -> dict[str, Any] | None:
        return next((r for r in self.cert["requirements"] if r["id"] == requirement_id), None)


def _href(target: Path, out: Path) -> str:
    relative = os.path.relpath(target.resolve(), out.resolve())
    return urllib.parse.quote(Path(relative).as_posix())


def load_columns(given: Sequence[Path], out: Path) -> list[Column]:
    """Every certificate, checked, in the order given (a CertificateError on the first bad one)."""
    columns = []
    for argument in given:
        path, cert = load_certificate(argument)
        page = path.parent / HTML_NAME
        columns.append(Column(path, cert, _href(page if page.exists() else path, out)))
    return columns


def _row_ids(columns: Sequence[Column]) -> list[str]:
    ids = {r["id"] for c in columns for r in c.cert["requirements"]}
    return sorted(ids, key=lambda i: (ORDER.get(i, len(ORDER)), i))


def _head(columns: Sequence[Column]) -> str:
    names = "".join(
        f'<th class="col"><a href="{esc(c.href)}"><b>{esc(testee_name(c.cert))}</b></a><br>'
        f'<span class="muted">{esc(c.cert["testee"]["role"])} &middot; '
        f"{esc(c.cert['date'][:10])}{' &middot; strict' if c.cert['strict'] else ''}</span></th>"
        for c in columns
    )
    grades = "".join(f'<td class="c">{grade_chip(c.cert["grade"])}</td>' for c in columns)
    roles = "".join(f'<td class="c">{esc(c.cert["testee"]["role"])}</td>' for c in columns)
    return (
        f"<tr><th>requirement</th><th>level</th>{names}</tr>"
        f"<tr><td><b>grade</b></td><td></td>{grades}</tr>"
        f"<tr><td>role</td><td></td>{roles}</tr>"
    )


def _cell(column: Column, requirement_id: str) -> str:
    entry = column.requirement(requirement_id)
    if entry is None:
        return '<td class="blank"></td>'
    status = str(entry["status"])
    expected = bool(entry["expected_failure"])
    colour = EXPECTED_COLOUR if expected else VERDICT_COLOURS.get(status, UNKNOWN_COLOUR)
    label = f"{status} (expected)" if expected else status
    title = f"{testee_name(column.cert)}: {requirement_id} {label}"
    return (
        f'<td class="c{" xf" if expected else ""}" style="background:{colour}">'
        f'<a href="{esc(column.href)}#req-{esc(requirement_id)}" title="{esc(title)}">'
        f"{esc(label)}</a></td>"
    )


def _rows(columns: Sequence[Column]) -> str:
    rows = []
    group = None
    for requirement_id in _row_ids(columns):
        known = BY_ID.get(requirement_id)
        row_group = known.group if known else OTHER_GROUP
        if row_group != group:
            group = row_group
            rows.append(f'<tr class="grp"><td colspan="{len(columns) + 2}">{esc(group)}</td></tr>')
        level = next(
            (e["level"] for c in columns if (e := c.requirement(requirement_id)) is not None), ""
        )
        rule = known.rule if known else ""
        rows.append(
            f'<tr><td><b title="{esc(rule)}">{esc(requirement_id)}</b></td><td>{esc(level)}</td>'
            f"{''.join(_cell(c, requirement_id) for c in columns)}</tr>"
        )
    return "".join(rows)


def render_matrix(columns: Sequence[Column]) -> str:
    legend = " ".join(
        badge(s) for s in ("PASS", "FAIL", "INCONCLUSIVE", "NOT_OBSERVED", "NOT_APPLICABLE")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>LVS conformance matrix ({len(columns)} certificates)</title>"
        f"<style>{CSS}{CERT_CSS}{MATRIX_CSS}</style></head><body>"
        f"<h1>LVS conformance matrix</h1><p>{len(columns)} certificate(s). Each cell links to "
        "the requirement in that certificate; a blank cell is a requirement the certificate "
        "does not judge (a rule of the other role).</p>"
        f'<p class="legend">{legend} <span class="v" style="background:{EXPECTED_COLOUR};'
        'color:#212121">FAIL (expected)</span> expected: listed in the known-issues file</p>'
        f'<table class="mx">{_head(columns)}{_rows(columns)}</table></body></html>\n'
    )


def write_matrix(given: Sequence[Path], out: Path) -> Path:
    """Read and check every certificate, then write out/index.html; return its path."""
    columns = load_columns(given, out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / INDEX_NAME
    path.write_text(render_matrix(columns), encoding="utf-8")
    return path


# --- the `matrix` subcommand of `harness certify` ----------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "certificates",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="a certification's report folder (holding certificate.json) or a certificate file",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where to write index.html (default: the current directory)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        path = write_matrix(args.certificates, args.out)
    except CertificateError as exc:
        print(f"harness certify matrix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"harness certify matrix: cannot write {args.out / INDEX_NAME}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"matrix of {len(args.certificates)} certificate(s): {path}")
    return 0
