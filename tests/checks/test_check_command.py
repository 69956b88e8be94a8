"""`harness check`: a stored run judged again gives the live verdicts; bad input is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario
from tests.checks.cases import all_cases

ROOT = Path(__file__).resolve().parents[2]
CASES, _ = all_cases()


def harness_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("run") / "frame-loss-recovery"
    scenario = load_scenario(ROOT / "scenarios" / "frame-loss-recovery.yaml")
    run_scenario(scenario, directory, seed=3)
    return directory


def test_rechecking_a_stored_scenario_gives_the_live_verdicts(stored_run: Path) -> None:
    live = json.loads((stored_run / "result.json").read_text())
    checked = harness_check(str(stored_run / "trace.jsonl"), "--json")
    assert checked.returncode in (0, 1), checked.stderr
    again = json.loads(checked.stdout)
    assert [(v["requirement"], v["status"], v["summary"]) for v in again["requirements"]] == [
        (v["requirement"], v["status"], v["summary"]) for v in live["requirements"]
    ]
    failed = any(v["status"] == "FAIL" for v in live["requirements"])
    assert checked.returncode == (1 if failed else 0)


def test_only_selects_by_pattern_and_output_writes_the_json(
    stored_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "verdicts.json"
    checked = harness_check(str(stored_run), "--all", "--only", "WD-*", "--output", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    written = json.loads(out.read_text())
    assert {v["requirement"] for v in written["requirements"]} == {"WD-1", "WD-2", "WD-3"}


def test_a_broken_trace_exits_1(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    records = CASES["KEY-2"](True).records
    trace.write_text("".join(json.dumps(r) + "\n" for r in records))
    checked = harness_check(str(trace), "--only", "KEY-2", "--json")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    (verdict,) = json.loads(checked.stdout)["requirements"]
    assert verdict["status"] == "FAIL"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"t": 1, "kind": "note"}\nnot json\n', "trace.jsonl:2: not JSON"),
        ('{"kind": "note"}\n', "trace.jsonl:1: a record needs 't' and 'kind'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text(content)
    checked = harness_check(str(trace))
    assert checked.returncode == 2
    assert message in checked.stderr
    assert len(checked.stderr.strip().splitlines()) == 1


def test_missing_path_and_unmatched_only(tmp_path: Path) -> None:
    missing = harness_check(str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"t": 1, "kind": "note"}\n')
    unmatched = harness_check(str(trace), "--only", "NOPE-*")
    assert unmatched.returncode == 2 and "matches no requirement" in unmatched.stderr
