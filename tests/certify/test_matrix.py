"""`harness certify matrix`: certificates on disk side by side, and its one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.certify.render import write_certificate_files
from harness.cli import main
from reference.protocol.requirements import CATALOGUE
from tests.certify.certificates import (
    HOSTILE,
    changed,
    primary_certificate,
    viewer_certificate,
    write_run,
)


def certified(directory: Path, cert: dict[str, object]) -> Path:
    write_run(directory, cert)
    write_certificate_files(cert, directory)
    return directory


def cells(page: str, requirement_id: str) -> list[str]:
    row = re.search(rf"<tr><td><b[^>]*>{requirement_id}</b>.*?</tr>", page, re.S)
    assert row is not None, requirement_id
    return re.findall(r"<td class=\"(?:c[^\"]*|blank)\".*?</td>", row.group(0), re.S)


def test_viewer_and_primary_certificates_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    viewer = certified(tmp_path / "reports" / "acme", viewer_certificate())
    primary = certified(tmp_path / "reports" / "cam", primary_certificate())
    out = tmp_path / "site"
    assert (
        main(
            ["certify", "matrix", str(viewer), str(primary / "certificate.json"), "--out", str(out)]
        )
        == 0
    )
    assert "matrix of 2 certificate(s)" in capsys.readouterr().out
    page = (out / "index.html").read_text(encoding="utf-8")

    # Columns in the order given, each headed by its testee, role and grade.
    assert page.index("AcmeViewer 1.4.2") < page.index("192.0.2.7:7000")
    grade_row = re.search(r"<tr><td><b>grade</b>.*?</tr>", page, re.S)
    assert grade_row is not None
    assert re.findall(r">(NOT CONFORMANT|CONFORMANT)<", grade_row.group(0)) == [
        "NOT CONFORMANT",
        "CONFORMANT",
    ]
    role_row = re.search(r"<tr><td>role</td>.*?</tr>", page, re.S)
    assert role_row is not None and re.findall(r">(viewer|primary)<", role_row.group(0)) == [
        "viewer",
        "primary",
    ]
    # Each cell links to the requirement in its own certificate, relative to the index.
    epoch, auth = cells(page, "EPOCH-2"), cells(page, "AUTH-1")
    assert (
        'href="../reports/acme/certificate.html#req-EPOCH-2"' in epoch[0] and ">FAIL<" in epoch[0]
    )
    assert epoch[1] == '<td class="blank"></td>'  # the Primary's certificate does not judge it
    assert ">NOT_APPLICABLE<" in auth[0]
    assert 'href="../reports/cam/certificate.html#req-AUTH-1"' in auth[1] and ">PASS<" in auth[1]
    assert "FAIL (expected)" in cells(page, "HB-1")[0]
    for link in re.findall(r'href="([^"#]+)', page):
        assert (out / link).exists(), link
    # Rows keep the catalogue's order, under its group headings.
    shown = re.findall(r"<tr><td><b[^>]*>([A-Z]+-\d+)</b>", page)
    catalogue_order = [r.id for r in CATALOGUE]
    assert shown == sorted({"AUTH-1", "KEY-1", "EPOCH-2", "HB-1"}, key=catalogue_order.index)
    assert '<tr class="grp">' in page


def test_the_index_goes_to_the_current_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = certified(tmp_path / "acme", viewer_certificate())
    monkeypatch.chdir(tmp_path)
    assert main(["certify", "matrix", "acme"]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="acme/certificate.html"' in page
    assert viewer.exists()


def test_a_certificate_without_its_page_links_to_the_json(tmp_path: Path) -> None:
    run = write_run(tmp_path / "bare", primary_certificate())  # certificate.json only
    assert main(["certify", "matrix", str(run), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="bare/certificate.json#req-KEY-1"' in page


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    cert = changed(viewer_certificate(), ["testee", "implementation"], HOSTILE)
    run = certified(tmp_path / "evil", cert)
    assert main(["certify", "matrix", str(run), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page and "&lt;script&gt;" in page


def broken_json(tmp_path: Path) -> Path:
    path = tmp_path / "broken" / "certificate.json"
    path.parent.mkdir()
    path.write_text('{\n  "schema_version": 1,\n  oops\n}\n', encoding="utf-8")
    return path.parent


def schema_invalid(tmp_path: Path) -> Path:
    return write_run(tmp_path / "invalid", changed(primary_certificate(), ["grade"], "GREAT"))


def empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "nowhere", r"nowhere: no such file"),
        (empty_folder, r"empty: no certificate\.json in this folder"),
        (broken_json, r"broken/certificate\.json:3: not valid JSON"),
        (schema_invalid, r"invalid/certificate\.json: grade: 'GREAT' is not one of"),
    ],
)
def test_a_missing_or_invalid_certificate_is_one_line_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, words: str
) -> None:
    good = certified(tmp_path / "good", viewer_certificate())
    bad = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "site"
    assert main(["certify", "matrix", str(good), str(bad), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness certify matrix: "), err
    assert re.search(words, err), err
    assert not out.exists()


def test_an_unwritable_output_is_one_line_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = certified(tmp_path / "good", viewer_certificate())
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["certify", "matrix", str(good), "--out", str(blocker)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err


def test_the_matrix_certificate_round_trips_as_json(tmp_path: Path) -> None:
    run = certified(tmp_path / "acme", viewer_certificate())
    saved = json.loads((run / "certificate.json").read_text(encoding="utf-8"))
    assert saved == viewer_certificate()
