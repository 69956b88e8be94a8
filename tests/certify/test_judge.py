"""Judging a certification: the testee alone, on every rule of its side; harness faults apart.

Real runs: reference peers over loopback TCP, the testee a real `harness viewer` or
`harness primary` process started from its command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.certify.judge import partition, rule_params, side_rules
from harness.certify.reference_testees import reference_commands
from harness.certify.run import CertifyOptions, certify_scenario
from harness.checks.engine import check_records
from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario
from harness.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = reference_commands()
VIEWER_CMD, PRIMARY_CMD = COMMANDS["viewer"], COMMANDS["primary"]


@pytest.fixture(scope="module", params=["first-connect", "reconfigure-mid-stream"])
def reference_trace(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[dict[str, object]]]:
    """A trace of the reference suite: reference peers on both sides."""
    scenario = load_scenario(ROOT / "scenarios" / f"{request.param}.yaml")
    result = run_scenario(scenario, tmp_path_factory.mktemp(request.param), 1)
    assert not result.problems, result.problems
    assert result.trace_path is not None
    return request.param, read_trace(Path(result.trace_path))


@pytest.mark.parametrize("role", ["viewer", "primary"])
def test_partition_keeps_the_verdicts_of_the_reference_suite(
    reference_trace: tuple[str, list[dict[str, object]]], role: str
) -> None:
    """The testee's records alone give each of its rules the verdict the whole trace gives."""
    name, records = reference_trace
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    ids = side_rules(role)
    params = rule_params(scenario, ids)
    testee_id = "v1" if role == "viewer" else "primary"
    mine, theirs = partition(records, role, testee_id)
    assert 0 < len(mine) < len(records) and 0 < len(theirs) < len(records)
    # Statuses, not summaries: a rule of BOTH sides counts fewer checks on one side alone.
    whole = {v.requirement: v.status for v in check_records(records, params)}
    alone = {v.requirement: v.status for v in check_records(mine, params)}
    assert alone == whole
    assert any(status.value == "PASS" for status in alone.values())


def deviated(tmp_path: Path, peer: str, deviation: str) -> Path:
    """first-connect with one reference peer breaking a rule on purpose."""
    text = (ROOT / "scenarios" / "first-connect.yaml").read_text()
    if peer == "primary":
        text = text.replace("viewers:\n", f"primary: {{deviations: [{deviation}]}}\nviewers:\n", 1)
    else:
        text = text.replace("  - id: v1\n", f"  - id: v1\n    deviations: [{deviation}]\n", 1)
    path = tmp_path / "first-connect.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("role", "command", "harness_peer", "deviation", "rule"),
    [
        ("viewer", VIEWER_CMD, "primary", "no_snapshot", "SNAP-1"),
        ("primary", PRIMARY_CMD, "viewer", "hello_without_role", "VER-1"),
    ],
)
def test_a_deviated_reference_peer_is_a_harness_fault_never_a_testee_fail(
    tmp_path: Path, role: str, command: str, harness_peer: str, deviation: str, rule: str
) -> None:
    scenario = load_scenario(deviated(tmp_path, harness_peer, deviation))
    entry, result = certify_scenario(
        scenario, tmp_path / "run", 1, CertifyOptions(role=role, command=command)
    )
    assert result is not None
    assert entry["verdict"] == "INCONCLUSIVE", entry
    assert any(f.startswith(f"{rule} FAILed on the reference") for f in entry["harness_faults"])
    statuses = {r["requirement"]: r["status"] for r in entry["requirements"]}
    assert set(statuses) == set(side_rules(role))
    assert set(statuses.values()) == {"INCONCLUSIVE"}
    assert all(r["summary"].startswith(f"harness fault: {rule}") for r in entry["requirements"])


def test_the_secret_reaches_the_auth_rules_where_expect_omits_it() -> None:
    """wrong-secret lists AUTH-2 without a secret; a certification still judges answers."""
    scenario = load_scenario(ROOT / "scenarios" / "wrong-secret.yaml")
    params = rule_params(scenario, ["AUTH-1", "AUTH-2", "HB-1"])
    assert params == {
        "AUTH-1": {"secret": "lvs-secret"},
        "AUTH-2": {"secret": "lvs-secret"},
        "HB-1": {},
    }
