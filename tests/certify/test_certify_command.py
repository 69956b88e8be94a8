"""`harness certify` as a user runs it: real processes, real TCP, the reference peers as testees.

The reference Viewer and Primary are certified from their command lines (as a third
party's would be) on a small subset of scenarios: CONFORMANT undeviated, and NOT
CONFORMANT on the IDs a deviation breaks and nothing else but their consequences
(BREAKS and CONSEQUENCES in reference/protocol/deviations.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.certify.reference_testees import reference_commands
from reference.protocol.deviations import BREAKS, CONSEQUENCES, Deviation

ROOT = Path(__file__).resolve().parents[2]
PYTHON = shlex.quote(sys.executable)
COMMANDS = reference_commands()
VIEWER_CMD, PRIMARY_CMD = COMMANDS["viewer"], COMMANDS["primary"]
# Exit statuses (docs/certify.md).
CONFORMANT_EXIT, NOT_CONFORMANT_EXIT, USAGE_EXIT, NOTHING_RUN_EXIT = 0, 1, 4, 5


def certify(
    role: str, command: str, report_dir: Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "certify",
            role,
            "--command",
            command,
            "--report-dir",
            str(report_dir),
            "-n",
            "0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def certificate(report_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report_dir / "certificate.json").read_text())
    return data


def failed(cert: dict[str, Any]) -> set[str]:
    return {r["id"] for r in cert["requirements"] if r["status"] == "FAIL"}


@pytest.mark.parametrize("role", ["viewer", "primary"])
def test_the_reference_peer_is_conformant(tmp_path: Path, role: str) -> None:
    done = certify(role, COMMANDS[role], tmp_path, "-k", "first-connect")
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path)
    assert cert["grade"] == "CONFORMANT" and cert["testee"]["role"] == role
    assert cert["run"]["scenarios_run"] == 1 and not failed(cert)
    assert "grade: CONFORMANT" in done.stdout
    if role == "viewer":
        assert cert["testee"]["implementation"] == "lvs-reference-viewer"
    trace = cert["scenarios"][0]["trace"]
    assert not Path(trace).is_absolute() and (tmp_path / trace).exists()


@pytest.mark.parametrize(
    ("deviation", "scenario"),
    [
        (Deviation.HELLO_WITHOUT_ROLE, "first-connect"),
        (Deviation.FLAGGED_CAPS, "first-connect"),
        (Deviation.NO_PROTO, "first-connect"),
        (Deviation.MEDIA_BEFORE_ACCEPT, "first-connect"),
        # A replay is a wrong answer for the new nonce: AUTH-5, its consequence, FAILs too.
        (Deviation.ACCEPT_WRONG_ANSWER, "replayed-answer"),
    ],
)
def test_a_deviated_peer_is_not_conformant_on_exactly_its_ids(
    tmp_path: Path, deviation: Deviation, scenario: str
) -> None:
    role = "viewer" if deviation.value in {d.value for d in _viewer_deviations()} else "primary"
    command = COMMANDS[role] + f" --deviation {deviation.value}"
    done = certify(role, command, tmp_path, "-k", scenario)
    assert done.returncode == NOT_CONFORMANT_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path)
    assert cert["grade"] == "NOT CONFORMANT"
    # Every ID it breaks, and nothing else but what that fault leads to (CONSEQUENCES).
    broken, also = set(BREAKS[deviation]), set(CONSEQUENCES.get(deviation, ()))
    assert broken <= failed(cert) <= broken | also, failed(cert)


def _viewer_deviations() -> frozenset[Deviation]:
    from reference.protocol.deviations import VIEWER_DEVIATIONS

    return VIEWER_DEVIATIONS


def test_only_narrows_the_scenarios_and_the_graded_ids(tmp_path: Path) -> None:
    done = certify(
        "viewer",
        VIEWER_CMD,
        tmp_path,
        "--only",
        "EPOCH-*",
        "-k",
        "first-connect or unknown-messages or reconfigure-mid-stream",
    )
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path)
    assert {r["id"] for r in cert["requirements"]} == {"EPOCH-3", "EPOCH-4"}
    verdicts = {s["name"]: (s["verdict"], s["reason"]) for s in cert["scenarios"]}
    assert verdicts["unknown-messages"] == ("NOT_APPLICABLE", "declares no viewer role")
    assert verdicts["reconfigure-mid-stream"][0] == "PASS"


def test_a_nonexistent_testee_command_is_a_one_line_error(tmp_path: Path) -> None:
    done = certify("viewer", "no-such-viewer-xyz --connect {host}:{port}", tmp_path / "r")
    assert done.returncode == USAGE_EXIT
    assert done.stderr.strip().count("\n") == 0
    assert "testee command not found: 'no-such-viewer-xyz'" in done.stderr
    assert not (tmp_path / "r").exists()  # nothing ran


def test_an_unknown_placeholder_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = certify("primary", PRIMARY_CMD + " --log {logfile}", tmp_path / "r")
    assert done.returncode == USAGE_EXIT
    assert "unknown placeholder {logfile} in the primary command" in done.stderr
    assert done.stderr.strip().count("\n") == 0 and not (tmp_path / "r").exists()


def test_nothing_run_is_not_green(tmp_path: Path) -> None:
    """Every chosen scenario is not applicable to a Primary: no grade can be given."""
    done = certify("primary", PRIMARY_CMD, tmp_path, "-k", "legacy-primary")
    assert done.returncode == NOTHING_RUN_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path)
    assert cert["run"]["scenarios_run"] == 0 and cert["grade"] != "CONFORMANT"
    assert "nothing run" in done.stdout


def test_a_testee_that_exits_makes_the_certificate_inconclusive(tmp_path: Path) -> None:
    """A Viewer command that ends at once: the run is cut short, never a pass."""
    done = certify("viewer", f"{PYTHON} -c pass {{host}} {{port}}", tmp_path, "-k", "first-connect")
    assert done.returncode not in (CONFORMANT_EXIT, NOTHING_RUN_EXIT), done.stdout + done.stderr
    cert = certificate(tmp_path)
    assert cert["grade"] in ("INCONCLUSIVE", "NOT CONFORMANT")
    assert cert["scenarios"][0]["problems"]


def test_a_known_issue_makes_its_failure_expected(tmp_path: Path) -> None:
    issues = tmp_path / "known.yaml"
    issues.write_text(
        "- {id: VER-1, scenario: 'first-*', reason: 'role omitted (bug 12)', expires: 2999-12-31}\n"
        "- {id: EPOCH-3, reason: 'fixed already', expires: 2999-12-31}\n"
        "- {id: HB-1, reason: 'long ago', expires: 2000-01-01}\n"
    )
    command = VIEWER_CMD + f" --deviation {Deviation.HELLO_WITHOUT_ROLE.value}"
    done = certify(
        "viewer",
        command,
        tmp_path / "r",
        "-k",
        "first-connect",
        "--known-issues",
        str(issues),
        "--testee-version",
        "1.2.3",
    )
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path / "r")
    ver1 = next(r for r in cert["requirements"] if r["id"] == "VER-1")
    assert ver1["status"] == "FAIL" and ver1["expected_failure"]
    assert ver1["known_issue"]["reason"] == "role omitted (bug 12)"
    assert [k["id"] for k in cert["known_issues"]["applied"]] == ["VER-1"]
    assert [k["id"] for k in cert["known_issues"]["no_longer_occurring"]] == ["EPOCH-3"]
    assert [k["id"] for k in cert["known_issues"]["expired"]] == ["HB-1"]
    assert cert["testee"]["version"] == "1.2.3"
    assert "known issue no longer occurring" in done.stdout


def test_a_malformed_known_issues_file_is_a_usage_error(tmp_path: Path) -> None:
    issues = tmp_path / "known.yaml"
    issues.write_text("- {id: VER-1}\n")
    done = certify("viewer", VIEWER_CMD, tmp_path / "r", "--known-issues", str(issues))
    assert done.returncode == USAGE_EXIT and str(issues) in done.stderr
    assert not (tmp_path / "r").exists()


def test_the_environment_carries_the_same_values_as_the_placeholders(tmp_path: Path) -> None:
    """A testee that reads only LVS_* variables is certified like one given placeholders."""
    script = (
        'env > "$LVS_RUN_DIR/testee-env.txt"; exec ' + PYTHON + " -m harness.cli viewer "
        '--connect "$LVS_HOST:$LVS_PORT" --secret "$LVS_SECRET" --telemetry "$LVS_TELEMETRY" '
        '--viewer-id "$LVS_VIEWER_ID" --quiet'
    )
    done = certify("viewer", f"sh -c {shlex.quote(script)}", tmp_path, "-k", "first-connect")
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    env = (tmp_path / "scenarios" / "first-connect" / "testee-env.txt").read_text()
    assert "LVS_VIEWER_ID=v1\n" in env and "LVS_VERSION=2\n" in env
    assert "LVS_SCENARIO=first-connect\n" in env and "LVS_TIMING_SCALE=1.0\n" in env


SITUATION_SCENARIO = """\
lvs: 2
description: A connect, then a stall that nothing causes (a situation wait that times out).
covers: [VER-1, WD-1]
timeout: 30
roles: {viewer: v1}
viewers:
  - id: v1
timeline:
  - wait: {viewer: v1, state: STREAMING}
  - wait: {viewer: v1, state: RECOVERING, situation: "a stall nothing here causes"}
    within: 1
expect:
  VER-1: {}
  WD-1: {}
"""


@pytest.mark.parametrize(("deviation", "grade"), [(None, 5), (Deviation.HELLO_WITHOUT_ROLE, 1)])
def test_a_situation_that_never_arose_keeps_a_fail_judged_before_it(
    tmp_path: Path, deviation: Deviation | None, grade: int
) -> None:
    """The testee broke VER-1 at connect; the stall the scenario wanted never came. The
    scenario is not applicable to the testee, but the VER-1 FAIL stands (and without the
    deviation nothing ran that applies: exit 5, never green)."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "never-stalls.yaml").write_text(SITUATION_SCENARIO)
    command = VIEWER_CMD + (f" --deviation {deviation.value}" if deviation else "")
    done = certify("viewer", command, tmp_path / "report", str(scenarios))
    assert done.returncode == grade, done.stdout + done.stderr
    if deviation is not None:
        cert = certificate(tmp_path / "report")
        assert failed(cert) == {"VER-1"}
        assert cert["grade"] == "NOT CONFORMANT"


def test_a_viewer_serving_its_control_interface_is_certified_in_the_background(
    tmp_path: Path,
) -> None:
    """client-background runs with the testee Viewer told through {control} (PROTOCOL.md 15)."""
    command = VIEWER_CMD + " --control {control}"
    done = certify("viewer", command, tmp_path, "-k", "client-background")
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    cert = certificate(tmp_path)
    (scenario,) = cert["scenarios"]
    assert scenario["applicable"] and scenario["verdict"] == "PASS", scenario


def test_the_testee_viewer_connects_to_the_listen_address_it_is_told(tmp_path: Path) -> None:
    """--listen/--advertise: the testee's tap and telemetry inlet on another address (a
    device on the network stands here on 127.0.0.2), and the harness says where to point it."""
    done = certify(
        "viewer", VIEWER_CMD, tmp_path, "-k", "first-connect",
        "--listen", "127.0.0.2", "--advertise", "127.0.0.2",
    )
    assert done.returncode == CONFORMANT_EXIT, done.stdout + done.stderr
    trace = tmp_path / certificate(tmp_path)["scenarios"][0]["trace"]
    joins = [
        json.loads(line) for line in trace.read_text().splitlines() if '"join"' in line
    ]
    (command,) = [j["command"] for j in joins if j.get("viewer") == "v1"]
    assert " --connect 127.0.0.2:" in command, command


@pytest.mark.parametrize(
    ("option", "value"), [("--listen", "nohost:notaport"), ("--advertise", "1.2.3.4:99")]
)
def test_a_bad_network_option_is_a_one_line_usage_error(
    tmp_path: Path, option: str, value: str
) -> None:
    done = certify("viewer", VIEWER_CMD, tmp_path, option, value)
    assert done.returncode == USAGE_EXIT, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("harness certify: ") and option in line
