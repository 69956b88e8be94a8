"""Certifying peers that are not ours: external commands driven through a scenario.

The "third-party" peers here are the reference ones run as separate programs
(`harness viewer`, `harness primary`), which is exactly what a certification
user does with their own binaries: the harness sees only their wire and, for a
Viewer, the telemetry file it writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from harness.checks.verdict import Status
from harness.scenarios.loader import PrimarySpec, Scenario, Step, ViewerSpec, load_scenario
from harness.scenarios.runner import run_scenario
from tests.scenarios.suite_runs import sigint_delivered

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
PY = sys.executable


def test_external_viewer_is_certified_from_its_wire_and_telemetry(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = (
        f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
        f"--telemetry {{telemetry}} --viewer-id v1 --quiet"
    )
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["EPOCH-3"] is Status.PASS  # decided from the external telemetry
    assert (tmp_path / "telemetry-v1.jsonl").stat().st_size > 0


def test_external_viewer_without_telemetry_leaves_telemetry_rules_undecided(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} --quiet"
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    scenario.timeline = [
        replace(step, wait={"tap": "viewer_side", "message": "STREAM_ACCEPTED"})
        if step.wait
        else step
        for step in scenario.timeline
    ]
    result = run_scenario(scenario, tmp_path, seed=3)
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert statuses["SNAP-1"] is Status.PASS  # wire rules still decided
    assert statuses["EPOCH-3"] is Status.NOT_OBSERVED  # no telemetry, no verdict
    assert statuses["STATE-3"] is Status.NOT_OBSERVED


EXTERNAL_PRIMARY = PrimarySpec(
    kind="external",
    command=f"{PY} -m harness.cli primary --listen {{host}}:{{port}} --secret {{secret}} "
    "--width 320 --height 180 --quiet",
)


def test_external_primary_alone_cannot_prove_its_snapshot_true(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.primary = EXTERNAL_PRIMARY
    result = run_scenario(scenario, tmp_path, seed=3)
    statuses = {v.requirement: v.status for v in result.verdicts}
    assert Status.FAIL not in statuses.values(), result.failures
    assert statuses["SNAP-1"] is Status.PASS
    # No Primary records and no other Viewer: nothing independent to compare with.
    assert statuses["SNAP-2"] is Status.NOT_OBSERVED


def test_external_primary_snapshot_checked_against_its_other_viewers(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "late-join-mid-stream.yaml")
    scenario.primary = EXTERNAL_PRIMARY
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "PASS", result.failures


# --- testees that fail, and what is left of them -----------------------------------

# A wait the reference peers satisfy within a second; a testee that dies must be reported
# long before it would expire (the old runner reported only the expired wait).
WAIT_STREAMING = Step(line=1, wait={"viewer": "v1", "state": "STREAMING"}, within=20)


def _scenario_with_viewer(command: str) -> Scenario:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    scenario.timeline = [WAIT_STREAMING]
    return scenario


def test_viewer_command_that_does_not_exist_is_reported_with_the_command(
    tmp_path: Path,
) -> None:
    scenario = _scenario_with_viewer("/nonexistent/lvs-viewer --connect {host}:{port}")
    result = run_scenario(scenario, tmp_path, seed=3)
    assert result.verdict == "FAIL"
    [problem] = result.problems
    assert "viewer v1" in problem and "/nonexistent/lvs-viewer --connect 127.0.0.1:" in problem
    assert "No such file or directory" in problem
    assert result.duration < WAIT_STREAMING.within


def test_viewer_that_exits_at_once_is_reported_with_status_and_stderr(tmp_path: Path) -> None:
    command = "sh -c 'echo decoder init failed: no such codec >&2; exit 3'"
    result = run_scenario(_scenario_with_viewer(command), tmp_path, seed=3)
    [problem] = result.problems
    assert "viewer v1 exited with status 3" in problem
    assert command in problem
    assert "decoder init failed: no such codec" in problem  # the tail of its stderr
    assert "never happened" not in problem
    assert result.duration < WAIT_STREAMING.within
    # Its output is kept next to the trace and named in the result (and result.json).
    logs = result.testees["viewer v1"]
    assert logs["command"] == command
    assert "decoder init failed" in Path(logs["stderr"]).read_text()
    assert Path(logs["stderr"]).parent == tmp_path
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["testees"]["viewer v1"]["stderr"] == logs["stderr"]


def test_primary_command_that_does_not_exist_is_reported_with_the_command(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    scenario.primary = PrimarySpec(kind="external", command="lvs-no-such-primary -p {port}")
    result = run_scenario(scenario, tmp_path, seed=3)
    [problem] = result.problems
    assert "primary" in problem and "lvs-no-such-primary -p " in problem
    assert "No such file or directory" in problem


def test_primary_that_exits_at_once_is_reported_before_its_listen_deadline(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = "sh -c 'echo camera busy >&2; exit 4'"
    scenario.primary = PrimarySpec(kind="external", command=command)
    result = run_scenario(scenario, tmp_path, seed=3)
    [problem] = result.problems
    assert f"primary exited with status 4: {command}" in problem
    assert "camera busy" in problem
    assert "never listened" not in problem  # the old 15 s wait
    assert Path(result.testees["primary"]["stderr"]).read_text() == "camera busy\n"


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling /proc: there is no event for another process's end
    return True


def test_a_testee_is_ended_with_its_whole_process_group(tmp_path: Path) -> None:
    """A testee's children die with it: `sh -c 'sleep 100001 & wait'` leaves no sleep.

    The Viewer here never speaks the protocol, so the scenario runs out its wait and
    tears down; the grandchild must then be gone within 5 s (the grace after SIGTERM).
    """
    pidfile = tmp_path / "grandchild.pid"
    command = f"sh -c 'sleep 100001 & echo $! > {pidfile}; wait'"
    scenario = _scenario_with_viewer(command)
    scenario.timeline = [replace(WAIT_STREAMING, within=1)]
    try:
        result = run_scenario(scenario, tmp_path / "run", seed=3)
        grandchild = int(pidfile.read_text())
        assert result.problems  # the wait failed, as it should
        assert _wait_until_gone(grandchild, within=5), "the testee's grandchild survived"
    finally:
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_reference_viewer_as_testee_keeps_its_console_in_a_log(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "first-connect.yaml")
    command = f"{PY} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} --quiet"
    scenario.viewers = [ViewerSpec(id="v1", kind="external", command=command)]
    scenario.timeline = [
        Step(line=1, wait={"tap": "viewer_side", "message": "STREAM_ACCEPTED"}, within=20)
    ]
    result = run_scenario(scenario, tmp_path, seed=3)
    assert not result.problems, result.problems
    stderr = Path(result.testees["viewer v1"]["stderr"]).read_text()
    assert "viewer finished in state" in stderr  # its last console line, after SIGTERM


INTERRUPTED_RUN = """
import sys
from pathlib import Path
from harness.scenarios.loader import Step, ViewerSpec, load_scenario
from harness.scenarios.runner import run_scenario

scenario = load_scenario(Path(sys.argv[1]))
scenario.viewers = [ViewerSpec(id="v1", kind="external", command=sys.argv[2])]
scenario.timeline = [Step(line=1, hold=60)]
run_scenario(scenario, Path(sys.argv[3]), seed=3)
"""


def test_an_interrupted_run_still_ends_its_testees(tmp_path: Path) -> None:
    """Ctrl-C reaches the harness, not the testees (their own session): teardown ends them.

    Deadlines: the testee's pid appears within 30 s of the start (imports included); the
    grandchild is gone within 5 s of the interrupted run's exit.
    """
    pidfile = tmp_path / "grandchild.pid"
    command = f"sh -c 'sleep 100002 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; wait'"
    with sigint_delivered():
        run = subprocess.Popen([PY, "-c", INTERRUPTED_RUN, str(ROOT / "first-connect.yaml"),
                                command, str(tmp_path / "r")])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists():
            assert time.monotonic() < deadline and run.poll() is None, "the testee never started"
            time.sleep(0.05)  # polling for a file another process writes
        grandchild = int(pidfile.read_text())
        run.send_signal(signal.SIGINT)
        run.wait(timeout=30)
        assert _wait_until_gone(grandchild, within=5), "an interrupted run left its testee"
    finally:
        if run.poll() is None:
            run.kill()
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_report_json_names_a_dead_testees_logs_relative_to_the_report(tmp_path: Path) -> None:
    """`harness run`: the testee's problem and its logs reach report.json (schema-valid)."""
    import jsonschema

    from harness.report.summary import report_schema
    from tests.scenarios.suite_runs import harness, report

    (tmp_path / "dead.yaml").write_text(
        "lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}}\nviewers:\n  - id: v1\n"
        "    kind: external\n    command: \"sh -c 'echo no display >&2; exit 3'\"\n"
        "timeline:\n  - wait: {viewer: v1, state: STREAMING}\n    within: 20\n"
    )
    run = harness(str(tmp_path / "dead.yaml"), "--report-dir", "out", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    data = report(tmp_path / "out")
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    (scenario,) = data["scenarios"]
    assert any("viewer v1 exited with status 3" in p for p in scenario["problems"])
    logs = scenario["testees"]["viewer v1"]
    assert not Path(logs["stderr"]).is_absolute()
    assert (tmp_path / "out" / logs["stderr"]).read_text() == "no display\n"
    page = (tmp_path / "out" / "report.html").read_text()
    assert f'href="{logs["stderr"]}"' in page  # the page links the testee's logs
