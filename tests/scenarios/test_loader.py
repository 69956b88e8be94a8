"""Scenario files: every shipped one loads, and broken ones say file, line and what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenarios.loader import (
    ScenarioError,
    declared_coverage,
    declares_scenario,
    load_scenario,
    scenario_files,
)
from reference.protocol.requirements import BY_ID

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.covers and set(scenario.covers) <= set(scenario.expect)


def test_every_requirement_is_covered_by_a_scenario() -> None:
    covered = declared_coverage(ROOT / "scenarios")
    missing = sorted(set(BY_ID) - set(covered))
    assert not missing, f"no scenario covers {missing}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("covers: [SNAP-1]\nexpect: {SNAP-1: {}}\ntimeline:\n  - do: dance\n", 4, "dance"),
        ("covers: [SNAP-1]\nexpect:\n  SNAP-1: {}\n  NOPE-9: {}\n", 4, "NOPE-9"),
        ("covers: [SNAP-1, KEY-9]\nexpect: {SNAP-1: {}, KEY-9: {}}\n", 2, "KEY-9"),
        (
            "covers: [SNAP-1]\nexpect: {SNAP-1: {}}\nviewers:\n  - id: v1\n    decod: true\n",
            5,
            "decod",
        ),
        (
            "covers: [SNAP-1]\nexpect: {SNAP-1: {}}\ntimeline:\n  - wait: {viewer: v9}\n",
            4,
            "no viewer 'v9'",
        ),
        (
            "covers: [SNAP-1]\nexpect: {SNAP-1: {}}\ntimeline:\n  - do: toxic\n"
            "    with: {type: latency}\n",
            4,
            "needs 'toxiproxy'",
        ),
        (
            "covers: [SNAP-1]\nexpect: {SNAP-1: {}}\nviewers:\n  - id: v1\ntimeline:\n"
            "  - do: background\n",
            6,
            "'background' needs 'with: {viewer: <id>}'",
        ),
        ("lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}\n", 4, "flow mapping at line 3"),
        ("covers: [SNAP-1]\nexpect: {SNAP-1: {}}\n", 0, "add `lvs: 2`"),
        ("lvs: 3\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}}\n", 1, "reads scenario format 2"),
        ("covers: [SNAP-1]\nexpect: {}\n", 1, "does not expect"),
        ("- just\n- a list\n", 1, "YAML mapping"),
        (
            "covers: [SNAP-1]\nexpect: {SNAP-1: {}}\ntimeline:\n"
            "  - hold: 1\n    wait: {state: X}\n",
            4,
            "exactly one of",
        ),
    ],
)
def test_broken_files_name_file_line_and_problem(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    if line == 0:  # the unmarked file itself is the problem, on its first line
        line = 1
    elif text.startswith("covers"):  # a scenario mapping: marked, one line further down
        text, line = "lvs: 2\n" + text, line + 1
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == path
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_a_broken_file_fails_alone_and_the_rest_of_the_suite_runs(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "broken.yaml").write_text(
        "lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}}\nbogus: 1\n"
    )
    (folder / "fine.yaml").write_text(
        "lvs: 2\ncovers: [FRAME-1]\nexpect: {FRAME-1: {}}\ntimeline:\n"
        "  - do: raw\n    with: {send: [{malformed: length_uint32_max}]}\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(folder),
            "-q",
            "-p",
            "no:cacheprovider",
            "--lvs-run-dir",
            str(tmp_path / "run"),
            "-o",
            "testpaths=",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = run.stdout + run.stderr
    assert "1 failed, 1 passed" in out, out
    assert "broken.yaml:4" in out and "bogus" in out


def test_only_marked_yaml_files_count_as_scenarios(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("# an LVS scenario\nlvs: 2\ncovers: [SNAP-1]\n")
    (tmp_path / "locust.yaml").write_text("users: 10\nnested:\n  lvs: 2\n")
    (tmp_path / "notes.yaml").write_text("text: 'lvs: 2'\n")
    assert [p.name for p in scenario_files([tmp_path])] == ["mine.yaml"]
    assert declares_scenario(tmp_path / "mine.yaml")
    assert not declares_scenario(tmp_path / "missing.yaml")


def test_every_shipped_scenario_is_marked() -> None:
    assert SCENARIOS and all(declares_scenario(p) for p in SCENARIOS)
