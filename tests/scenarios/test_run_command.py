"""`harness run` and the pytest plugin end to end, as real subprocesses: what gets collected,
what counts as nothing run, broken files, long and killed scenarios, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scenarios.suite_runs import (
    FAST,
    ROOT,
    env,
    harness,
    holding,
    pytest_run,
    report,
    sigint_delivered,
)


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    run = harness("nonexistent.yaml", cwd=tmp_path)
    assert run.returncode == 4, run.stdout + run.stderr
    assert run.stdout.strip() == "harness run: nonexistent.yaml: no such file or folder"


def test_a_file_that_is_no_scenario_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not a scenario\n")
    run = harness("README.md", cwd=tmp_path)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "README.md: not a scenario file" in run.stdout
    assert len(run.stdout.strip().splitlines()) == 1


def test_a_folder_without_scenarios_is_nothing_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = harness("empty", cwd=tmp_path)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "holds no scenario files" in run.stdout


def test_a_keyword_matching_nothing_exits_5(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "fast.yaml").write_text(FAST)
    run = harness(str(folder), "-k", "no_such_scenario", "-n", "0", cwd=tmp_path)
    assert run.returncode == 5, run.stdout + run.stderr
    assert "-k 'no_such_scenario' matched none of them" in run.stdout


def test_a_scenario_named_explicitly_runs_whatever_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "fast.yaml").write_text(FAST)
    out = tmp_path / "out"
    run = harness(str(folder / "fast.yaml"), "-n", "0", "--report-dir", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [s["name"] for s in report(out)["scenarios"]] == ["fast"]


def test_an_unmarked_file_named_explicitly_is_reported_broken(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(FAST.replace("lvs: 2\n", ""))
    out = tmp_path / "out"
    run = harness(str(path), "-n", "0", "--report-dir", str(out), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    (broken,) = report(out)["broken_files"]
    assert "old.yaml:1: not marked as an LVS scenario: add `lvs: 2`" in broken["error"]


def test_other_projects_yaml_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "locust.yaml").write_text("users: 10\nspawn-rate: 2\nhost: x\n")
    (tmp_path / "test_plain.py").write_text("def test_ok():\n    assert True\n")
    run = pytest_run(cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "1 passed" in out and "collected 1 item" in out and "locust.yaml" not in out
    assert not (tmp_path / "reports").exists(), "a run without scenarios writes no LVS report"


@pytest.fixture(scope="module")
def broken_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suite") / "scenarios"
    folder.mkdir()
    (folder / "fast.yaml").write_text(FAST)
    (folder / "broken.yaml").write_text("lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}\n")
    return folder


def test_a_broken_file_makes_the_reports_say_so(broken_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = harness(str(broken_suite), "-n", "0", "--report-dir", str(out), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    data = report(out)
    assert data["outcome"] == "FAIL"
    assert [Path(b["file"]).name for b in data["broken_files"]] == ["broken.yaml"]
    assert "broken.yaml:4: not valid YAML" in data["broken_files"][0]["error"]
    assert data["totals"] | {"requirements": None} == {
        "scenarios": 2,
        "passed": 1,
        "failed": 0,
        "errors": 0,
        "broken": 1,
        "not_applicable": 0,
        "requirements": None,
    }
    page = (out / "report.html").read_text()
    assert "Broken scenario files (1)" in page
    assert "broken" in run.stdout and "BROKEN" in run.stdout


def test_pytest_writes_the_same_reports_as_harness_run(broken_suite: Path, tmp_path: Path) -> None:
    via_harness, via_pytest = tmp_path / "harness", tmp_path / "pytest"
    harness(str(broken_suite), "-n", "0", "--report-dir", str(via_harness), cwd=tmp_path)
    run = pytest_run(str(broken_suite), "--lvs-run-dir", str(via_pytest), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    for name in ("report.json", "report.html", "junit.xml"):
        assert (via_pytest / name).exists(), name
    one, two = report(via_harness), report(via_pytest)

    def shape(data: dict[str, object]) -> object:
        scenarios = data["scenarios"]
        assert isinstance(scenarios, list)
        return (
            data["outcome"],
            data["totals"],
            [(s["name"], s["verdict"], s["requirements"][0]["status"]) for s in scenarios],
            len(data["broken_files"]),  # type: ignore[arg-type]
            {k: v["verdict"] for k, v in data["requirements"].items()},  # type: ignore[attr-defined]
        )

    assert shape(one) == shape(two)
    assert "pytest" in two["run"]["command"] and "harness" in one["run"]["command"]


def test_the_scenarios_own_timeout_governs_not_the_global_one(tmp_path: Path) -> None:
    """pytest-timeout at 3 s for everything (as pyproject's 120 s is); a 6 s scenario passes."""
    (tmp_path / "pytest.ini").write_text("[pytest]\ntimeout = 3\n")
    (tmp_path / "long.yaml").write_text(holding(6, timeout=30))
    out = tmp_path / "out"
    run = harness("long.yaml", "-n", "0", "--report-dir", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    (scenario,) = report(out)["scenarios"]
    assert scenario["verdict"] == "PASS" and scenario["duration"] > 6


def test_a_killed_scenario_is_an_error_with_its_reason(tmp_path: Path) -> None:
    """pytest-timeout kills the item (the grace is made negative to get there in 3 s)."""
    (tmp_path / "long.yaml").write_text(holding(20, timeout=20))
    out = tmp_path / "out"
    run = pytest_run(
        "long.yaml", "--lvs-run-dir", str(out), "--lvs-timeout-grace", "-17", cwd=tmp_path
    )
    assert run.returncode == 1, run.stdout + run.stderr
    data = report(out)
    (scenario,) = data["scenarios"]
    assert scenario["verdict"] == "ERROR"
    assert scenario["problems"] == ["call: Failed: Timeout (>3.0s) from pytest-timeout."]
    assert [(r["requirement"], r["status"]) for r in scenario["requirements"]] == [
        ("HB-1", "INCONCLUSIVE")
    ]
    assert data["requirements"]["HB-1"]["verdict"] == "INCONCLUSIVE"
    assert "Timeout" in (out / "report.html").read_text()
    junit = (out / "junit.xml").read_text()
    assert 'name="scenario"' in junit and "<error" in junit and "Timeout" in junit
    assert len(junit.splitlines()) < 60, "a reason, not a traceback"


@pytest.mark.parametrize("workers", ["0", "1"])
def test_ctrl_c_writes_a_report_that_says_interrupted(tmp_path: Path, workers: str) -> None:
    (tmp_path / "long.yaml").write_text(holding(60, timeout=90))
    (tmp_path / "fast.yaml").write_text(FAST)
    out = tmp_path / "out"
    with sigint_delivered():
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "run",
                "fast.yaml",
                "long.yaml",
                "-n",
                workers,
                "--report-dir",
                str(out),
            ],
            cwd=tmp_path,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    trace = out / "scenarios" / "long" / "trace.jsonl"
    deadline = time.monotonic() + 60
    while not (trace.exists() and '"STREAMING"' in trace.read_text()):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the long scenario never reached STREAMING"
        time.sleep(0.1)  # polling another process's file
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    data = report(out)
    assert data["run"]["interrupted"] is True and data["outcome"] == "INTERRUPTED"
    verdicts = {s["name"]: s["verdict"] for s in data["scenarios"]}
    assert verdicts == {"fast": "PASS", "long": "ERROR"}, verdicts
    long = next(s for s in data["scenarios"] if s["name"] == "long")
    assert "interrupted" in long["problems"][0]
    assert "The run was interrupted" in (out / "report.html").read_text()
    assert 'name="interrupted"' in (out / "junit.xml").read_text()
    assert "interrupted" in output


def test_json_summary_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "fast.yaml").write_text(FAST)
    out = tmp_path / "out"
    run = harness("fast.yaml", "-n", "0", "--json", "--report-dir", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["outcome"] == "PASS"
    assert summary["scenarios"] == [
        {"name": "fast", "verdict": "PASS", "duration": summary["scenarios"][0]["duration"]}
    ]
    assert summary["requirements"]["FRAME-1"] == "PASS"
    assert Path(summary["report_dir"]) == out
    assert "reports:" in run.stderr


def test_the_run_directory_line_is_not_wrapped_when_piped(tmp_path: Path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-for-the-reports-" * 3)
    (tmp_path / "fast.yaml").write_text(FAST)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "fast.yaml",
            "-n",
            "0",
            "--report-dir",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**env(), "COLUMNS": "80"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("reports: ") and str(folder) in line for line in lines)
    assert any(line.startswith("harness run ") and str(folder) in line for line in lines)


def test_paths_in_the_report_are_relative_to_the_report_dir(tmp_path: Path) -> None:
    (tmp_path / "fast.yaml").write_text(FAST)
    out = tmp_path / "out"
    harness("fast.yaml", "-n", "0", "--report-dir", str(out), cwd=tmp_path)
    (scenario,) = report(out)["scenarios"]
    assert scenario["trace"] == "scenarios/fast/trace.jsonl"
    assert scenario["pcap"] == "scenarios/fast/wire.pcapng"
    assert scenario["path"] == "../fast.yaml"
    assert (out / scenario["trace"]).exists()


def test_root_is_this_checkout() -> None:
    assert (ROOT / "harness" / "pytest_plugin.py").exists()
