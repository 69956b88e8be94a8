"""External peers in a soak (docs/soak.md, "External peers"): the reference peers run as
third-party commands (harness/certify/reference_testees.py), judged as certification
judges them: the testee on its side's rules, the reference peers apart, a FAIL of theirs a
harness fault that makes the testee's verdicts of its window INCONCLUSIVE."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.certify.reference_testees import reference_commands
from harness.checks.verdict import Status
from harness.cli import main
from harness.soak.report import write_reports
from harness.soak.run import SoakResult, SoakRun
from harness.soak.shrink import fails_on
from harness.soak.testees import SoakTestees, Split, needs_control
from tests.scenarios.suite_runs import env
from tests.soak.conftest import churn_profile

COMMANDS = reference_commands()
# The reference Primary's command without its test-control interface.
PRIMARY_NO_CONTROL = COMMANDS["primary"].replace(" --control {control}", "")
# Every kind an external Primary can be given through the fault path and its control
# interface, including a restart of its process; a step every 2 s over 20 s.
EXTERNAL: dict[str, Any] = {
    "duration": 20,
    "viewers": 3,
    "decoding": 0,
    "late_joiners": 0,
    "window": 5,
    "sample_interval": 1,
    "path": ["frame_proxy"],
    "nemesis": {
        "every": 2,
        "start_after": 2,
        "faults": {
            "reconfigure": {"weight": 2, "duration": [1, 1]},
            "restart_primary": {"weight": 1, "duration": [0.5, 1]},
            "drop": {"weight": 1, "duration": [1, 2]},
            "kill_viewer": {"weight": 1, "duration": [1, 2]},
        },
    },
    "drift": {"warmup": 5, "min_samples": 3, "limits": []},
}
SEED = 1  # draws kills, reconfigurations and a restart of the Primary


def run(directory: Path, testees: SoakTestees, seed: int = SEED, **overrides: Any) -> SoakResult:
    import asyncio

    directory.mkdir(parents=True, exist_ok=True)
    soak = SoakRun(churn_profile(**{**EXTERNAL, **overrides}), directory, seed, testees=testees)
    result = asyncio.run(soak.soak())
    write_reports(result)
    return result


def statuses(result: SoakResult) -> dict[str, str]:
    return {v.requirement: v.status.value for v in result.verdicts}


@pytest.mark.timeout(180)
def test_the_reference_primary_as_an_external_command_passes(tmp_path: Path) -> None:
    result = run(tmp_path, SoakTestees(primary_command=COMMANDS["primary"]))
    assert result.problems == [] and result.verdict == "PASS", (
        result.problems, result.fails, result.harness_faults)
    done = {e["do"] for e in result.executed if "error" not in e}
    # Delivered through its test-control interface, and its process restarted.
    assert {"reconfigure", "restart_primary"} <= done, result.executed
    assert all("error" not in e for e in result.executed)
    assert result.testees["judged"] == "the external Primary"
    assert "--listen 127.0.0.1:" in result.testees["processes"]["primary"]["command"]
    # The testee is judged on the Primary's rules, the reference Viewers apart.
    judged = statuses(result)
    assert "AUTH-1" in judged and "VER-1" not in judged
    assert judged["AUTH-1"] == "PASS" and judged["EPOCH-1"] == "PASS"
    harness = {v.requirement: v.status for v in result.harness_verdicts}
    assert "VER-1" in harness and "AUTH-1" not in harness
    assert Status.PASS in harness.values() and Status.FAIL not in harness.values()
    # Its process is sampled like the others.
    assert "primary.rss_mb" in result.figures["series"]
    data = json.loads((tmp_path / "soak.json").read_text())
    assert data["verdict"] == "PASS" and data["testees"]["judged"] == "the external Primary"


@pytest.mark.timeout(240)
def test_a_deviated_external_primary_fails_on_its_id(tmp_path: Path) -> None:
    command = COMMANDS["primary"] + " --deviation reuse_nonce"  # breaks AUTH-1 (section 11)
    result = run(tmp_path, SoakTestees(primary_command=command))
    assert result.problems == [] and result.harness_faults == []
    assert result.failed_requirements == ["AUTH-1"], [f["summary"] for f in result.fails]
    assert result.verdict == "FAIL"
    assert {(f["requirement"], f["peer"], f["peers"]) for f in result.fails} == {
        ("AUTH-1", "testee", "the external Primary")}
    page = (tmp_path / "soak.html").read_text()
    assert "evidence from: testee (the external Primary)" in page
    # The reproduction replays the same external Primary.
    fail = result.fails[0]
    scenario = yaml.safe_load(Path(fail["reproduction"]).read_text())
    assert scenario["primary"]["kind"] == "external"
    assert "--deviation reuse_nonce" in scenario["primary"]["command"]
    # Which `--shrink` runs judged as the soak judged: on the testee's records.
    case = json.loads(Path(fail["reproduction"]).with_suffix(".json").read_text())
    split = Split.of_case(case)
    assert split is not None and split.primary_testee and not split.testee_viewers
    assert fails_on("AUTH-1", Path(fail["reproduction"]), tmp_path / "rerun", split)


@pytest.mark.timeout(180)
def test_a_fail_of_the_reference_peers_is_a_harness_fault_not_the_testees(
    tmp_path: Path,
) -> None:
    """The external Primary breaks AUTH-1 and the reference Viewers break NEG-4 on the same
    connections (a killed Viewer's rejoin: the Primary repeats a nonce once the first one
    was used): NEG-4 is a harness fault, AUTH-1 INCONCLUSIVE, the soak INCONCLUSIVE."""
    command = COMMANDS["primary"] + " --deviation reuse_nonce"
    kills = {"every": 2, "start_after": 2,
             "faults": {"kill_viewer": {"weight": 1, "duration": [0.5, 1]}}}
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(
        {**EXTERNAL, "viewer_deviations": ["early_keyframe_request"], "nemesis": kills}))
    run_dir = tmp_path / "run"
    assert main(["soak", "--profile", str(profile), "--seed", str(SEED), "--quiet",
                 "--report-dir", str(run_dir), "--primary-command", command]) == 3
    data = json.loads((run_dir / "soak.json").read_text())
    assert data["problems"] == [] and data["fails"] == [], data["fails"]
    assert {f["requirement"] for f in data["harness_faults"]} == {"NEG-4"}
    assert {(f["peer"], f["peers"]) for f in data["harness_faults"]} == {
        ("harness", "the reference Viewers")}
    assert {f["requirement"] for f in data["inconclusive"]} == {"AUTH-1"}
    overall = {v["requirement"]: v["status"] for v in data["requirements"]}
    assert overall["AUTH-1"] == "INCONCLUSIVE" and "FAIL" not in overall.values()
    assert {v["requirement"]: v["status"] for v in data["harness_requirements"]}[
        "NEG-4"] == "FAIL"
    assert data["verdict"] == "INCONCLUSIVE"
    junit = (run_dir / "junit.xml").read_text()
    assert 'name="harness fault w' in junit and '-NEG-4-harness"' in junit
    page = (run_dir / "soak.html").read_text()
    assert "[harness fault]" in page and "[INCONCLUSIVE]" in page

@pytest.mark.timeout(180)
def test_external_viewers_join_the_population_and_are_judged(tmp_path: Path) -> None:
    viewer = COMMANDS["viewer"] + " --deviation early_keyframe_request"  # breaks NEG-4
    testees = SoakTestees(viewer_command=viewer, external_viewers=2)
    # Seed 1 kills x01 at 9.3 s and x02 at 11.7 s, among drops and reconfigurations.
    result = run(tmp_path, testees, nemesis={"every": 2, "start_after": 2, "faults": {
        "drop": {"weight": 1, "duration": [1, 2]},
        "reconfigure": {"weight": 1, "duration": [1, 1]},
        "kill_viewer": {"weight": 2, "duration": [1, 2]}}})
    assert result.problems == []
    # NEG-4 is theirs: a FAIL of the testee, never a harness fault. (On a starved host a
    # timing rule may FAIL beside it, in either engine: not asserted away, not required.)
    assert "NEG-4" in result.failed_requirements and result.verdict == "FAIL", (
        result.fails, result.harness_faults)
    assert "NEG-4" not in {f["requirement"] for f in result.harness_faults}
    neg4 = [f for f in result.fails if f["requirement"] == "NEG-4"]
    where = {e["where"] for f in neg4 for e in f["evidence"]}
    assert where and all("x0" in w for w in where), where  # the external Viewers', not v01's
    assert {f["peers"] for f in result.fails} == {"external Viewers x01, x02"}
    # Their telemetry was tailed into the trace and judged (Viewer rules only).
    assert statuses(result)["EPOCH-3"] == "PASS" and "AUTH-1" not in statuses(result)
    for vid in ("x01", "x02"):
        assert (tmp_path / f"telemetry-{vid}.jsonl").stat().st_size > 0
        assert f"external.{vid}.rss_mb" in result.figures["series"]
    # They churn like the population: killed (their process group), rejoined as a new
    # process with a new name, whose records are the testee's too.
    killed = [e["with"]["viewer"] for e in result.executed if e["do"] == "kill_viewer"]
    assert {"x01", "x02"} <= set(killed), result.executed
    assert all("error" not in e for e in result.executed), result.executed
    assert (tmp_path / "telemetry-x01r2.jsonl").stat().st_size > 0
    assert "x01r2" in result.testees["processes"]["viewer x01r2"]["command"]


def test_without_a_control_interface_the_nemesis_draws_no_control_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(EXTERNAL))
    argv = ["soak", "--profile", str(profile), "--seed", str(SEED), "--schedule",
            "--report-dir", str(tmp_path / "run"), "--primary-command", PRIMARY_NO_CONTROL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "not drawn: reconfigure: the external Primary has no test-control interface" in out
    soak = SoakRun(churn_profile(**EXTERNAL), tmp_path / "r", SEED,
                   testees=SoakTestees(primary_command=PRIMARY_NO_CONTROL))
    kinds = {s.kind for s in soak.schedule.steps}
    assert "reconfigure" not in kinds and "restart_primary" in kinds
    assert soak.schedule.left_out == {"reconfigure": soak.schedule.left_out["reconfigure"]}
    assert needs_control("pause") and not needs_control("restart_primary")
    # With the interface the same seed draws them.
    with_control = SoakRun(churn_profile(**EXTERNAL), tmp_path / "c", SEED,
                           testees=SoakTestees(primary_command=COMMANDS["primary"]))
    assert "reconfigure" in {s.kind for s in with_control.schedule.steps}
    assert with_control.schedule.left_out == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--primary-command", "no-such-lvs-primary --listen {host}:{port}"],
         "--primary-command: no such program 'no-such-lvs-primary'"),
        (["--viewer-command", "no-such-lvs-viewer {host}"],
         "--viewer-command: no such program 'no-such-lvs-viewer'"),
        (["--primary-command", "true {telemetry}"], "unknown placeholder {telemetry}"),
        (["--external-viewers", "2"], "--external-viewers needs --viewer-command"),
        # Devices (tests/soak/test_devices.py): certify's options, checked before anything.
        (["--listen", "127.0.0.7"],
         "--listen: where external Viewers connect; needs --viewer-command"),
        (["--viewer-command", "true {host}", "--external-viewers", "2", "--listen",
          "127.0.0.7:7000"], "a fixed port (--listen) serves one external Viewer"),
        (["--viewer-command", "true {host}", "--listen", "nowhere:port"],
         "--listen: 'port' is not a port"),
        (["--primary-address", "127.0.0.1"], "--primary-address: expected HOST:PORT"),
        (["--primary-control", "http://127.0.0.1:1"],
         "--primary-control needs --primary-command or --primary-address"),
    ],
)
def test_a_bad_testee_command_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["soak", "--profile", "smoke", "--duration", "20s", "--quiet",
                 "--report-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "soak.json").exists()


@pytest.mark.timeout(120)
def test_a_primary_that_exits_at_once_ends_the_soak_not_green(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(EXTERNAL))
    process = subprocess.run(
        [sys.executable, "-m", "harness.cli", "soak", "--profile", str(profile), "--quiet",
         "--report-dir", str(tmp_path / "run"),
         "--primary-command", "sh -c 'echo no camera >&2; exit 3'"],
        capture_output=True, text=True, timeout=100, cwd=Path.cwd(), env=env(),
    )
    assert process.returncode == 1, process.stdout + process.stderr
    assert "problem: primary exited with status 3" in process.stdout
    assert "no camera" in process.stdout
    data = json.loads((tmp_path / "run" / "soak.json").read_text())
    assert data["verdict"] == "FAIL" and data["duration"] < 15
