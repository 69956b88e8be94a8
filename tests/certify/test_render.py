"""certificate.json's schema, certificate.html and badge.svg from hand-built certificates."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from harness.certify.certificate import (
    SCHEMA,
    CertificateError,
    check_certificate,
    load_certificate,
)
from harness.certify.grade import Grade
from harness.certify.render import GRADE_COLOURS, badge_svg, write_certificate_files
from harness.checks.verdict import Status
from reference.protocol.requirements import Level
from tests.certify.certificates import (
    HOSTILE,
    changed,
    primary_certificate,
    viewer_certificate,
    write_run,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_the_schema_is_a_valid_2020_12_schema_with_the_codes_enums() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    defs = SCHEMA["$defs"]
    assert defs["grade"]["enum"] == [g.value for g in Grade]
    assert defs["status"]["enum"] == [s.value for s in Status]
    assert defs["level"]["enum"] == [lv.value for lv in Level]


def test_a_hand_built_certificate_validates_and_renders(tmp_path: Path) -> None:
    cert = viewer_certificate()
    directory = write_run(tmp_path / "run", cert)
    written = write_certificate_files(cert, directory)
    assert [p.name for p in written] == ["certificate.json", "certificate.html", "badge.svg"]
    assert load_certificate(directory) == (directory / "certificate.json", cert)

    page = (directory / "certificate.html").read_text(encoding="utf-8")
    for shown in (
        "AcmeViewer 1.4.2",
        "NOT CONFORMANT",
        "LVS 2 (PROTOCOL.md)",
        "0.9.0",
        "2026-12-02T07:00:00Z",
        "<b>1234</b>",
        "v1: libavcodec h264",
        "my-viewer --connect {host}:{port} --secret {secret}",
        'id="req-EPOCH-2"',
        ">MUST<",
        "vendor bug 12: heartbeat late under load",
        "STATE-2 FAILed on the reference Primary: ACTIVE 2 ms early",
        "declares no viewer role",
        "STREAM_STATE|state=ACTIVE epoch=2",
    ):
        assert shown in page, shown
    # The expected failure is marked beside its requirement and its scenario.
    hb_row = re.search(r'<tr id="req-HB-1">.*?</tr>', page, re.S)
    assert hb_row is not None and "expected failure" in hb_row.group(0)
    # Evidence links are relative and point at files that exist.
    links = re.findall(r'href="([^"#][^"]*)"', page)
    assert "reconfigure-mid-stream/trace.jsonl" in links
    assert "reconfigure-mid-stream/result.json" in links
    assert all((directory / link).exists() for link in links), links
    assert "(missing)" not in page
    # Self-contained: no script, stylesheet, image or anything fetched from elsewhere.
    assert not re.search(r"<script|<link|<img|src=|https?://", page)


def test_a_moved_trace_is_marked_missing(tmp_path: Path) -> None:
    cert = viewer_certificate()
    directory = write_run(tmp_path / "run", cert)
    (directory / "first-connect" / "trace.jsonl").unlink()
    write_certificate_files(cert, directory)
    page = (directory / "certificate.html").read_text(encoding="utf-8")
    assert "(missing)" in page


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (["grade"], "MOSTLY FINE", "grade: 'MOSTLY FINE' is not one of"),
        (["schema_version"], 2, "schema_version 2; this harness reads certificates of"),
        (["testee", "role"], "relay", "testee/role: 'relay' is not one of"),
        (["requirements", 0, "level"], "OUGHT", "requirements/0/level"),
        (["requirements", 0, "scenarios", 0, "trace"], "/etc/passwd", "trace"),
        (["scenarios", 0, "trace"], "javascript:alert(1)", "scenarios/0/trace"),
        (["scenarios", 3, "verdict"], "PASS", "scenarios/3"),
        (["run", "seed"], "1234", "run/seed: '1234' is not of type"),
        (["date"], "yesterday", "date: 'yesterday' does not match"),
    ],
)
def test_an_invalid_certificate_is_one_line_and_writes_nothing(
    tmp_path: Path, path: list[str | int], value: object, words: str
) -> None:
    cert = changed(viewer_certificate(), path, value)
    with pytest.raises(CertificateError) as caught:
        write_certificate_files(cert, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 500
    assert words in message, message
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_key_is_named() -> None:
    cert = viewer_certificate()
    cert["testee"]["colour"] = "blue"
    with pytest.raises(CertificateError, match=r"testee: Additional properties .*'colour'"):
        check_certificate(cert)


def test_the_page_escapes_hostile_strings(tmp_path: Path) -> None:
    cert = viewer_certificate()
    cert["testee"]["command"] = f"evil {HOSTILE} --port {{port}}"
    cert["testee"]["implementation"] = HOSTILE
    cert["testee"]["version"] = '"><img src=x onerror=alert(1)>'
    cert["requirements"][0]["scenarios"][0]["evidence"][0]["what"] = HOSTILE
    cert["requirements"][0]["scenarios"][0]["summary"] = HOSTILE
    cert["scenarios"][0]["harness_faults"] = [HOSTILE]
    cert["scenarios"][3]["reason"] = HOSTILE
    cert["known_issues"]["applied"][0]["reason"] = HOSTILE
    directory = write_run(tmp_path / "run", cert)
    write_certificate_files(cert, directory)
    page = (directory / "certificate.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page


def badge_texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("grade", [g.value for g in Grade])
def test_the_badge_is_valid_svg_coloured_by_grade(tmp_path: Path, grade: str) -> None:
    cert = viewer_certificate(grade)
    write_certificate_files(cert, tmp_path)
    svg = (tmp_path / "badge.svg").read_text(encoding="utf-8")
    texts = badge_texts(svg)
    assert texts == ["LVS viewer", "LVS viewer", grade, grade]
    assert f'fill="{GRADE_COLOURS[grade]}"' in svg
    root = ET.fromstring(svg)
    assert root.get("aria-label") == f"LVS viewer: {grade}"
    assert int(root.get("width", "0")) > 0


def test_the_badge_escapes_its_text_and_grows_with_it() -> None:
    svg = badge_svg("primary", HOSTILE + " & more")
    assert badge_texts(svg)[2] == HOSTILE + " & more"
    short = ET.fromstring(badge_svg("primary", "CONFORMANT"))
    long = ET.fromstring(badge_svg("primary", "CONFORMANT WITH WARNINGS"))
    assert int(long.get("width", "0")) > int(short.get("width", "0"))


def test_a_certificate_without_files_still_renders(tmp_path: Path) -> None:
    cert = primary_certificate()
    write_certificate_files(cert, tmp_path / "new")
    page = (tmp_path / "new" / "certificate.html").read_text(encoding="utf-8")
    assert "192.0.2.7:7000" in page and "CONFORMANT" in page
    saved = json.loads((tmp_path / "new" / "certificate.json").read_text(encoding="utf-8"))
    assert saved == cert
