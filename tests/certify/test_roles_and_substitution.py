"""Roles in scenario files, placeholders, and what a testee cannot play (NOT_APPLICABLE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.certify.substitute import (
    CommandError,
    NotApplicable,
    check_command,
    for_primary,
    for_viewer,
)
from harness.scenarios.loader import ScenarioError, load_scenario
from harness.scenarios.placeholders import (
    PRIMARY_PLACEHOLDERS,
    VIEWER_PLACEHOLDERS,
    environment,
    expand,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
VIEWER_CMD = "my-viewer {host}:{port} --secret {secret} --telemetry {telemetry} --id {viewer_id}"
PRIMARY_CMD = "my-primary --listen {host}:{port} --secret {secret}"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_declares_roles_and_keeps_lvs_first(path: Path) -> None:
    assert path.read_text().startswith("lvs: 2"), path
    scenario = load_scenario(path)
    assert scenario.roles.viewer is not None or scenario.roles.primary, path
    if scenario.roles.viewer is not None:
        assert scenario.roles.viewer in {v.id for v in scenario.viewers}


def scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text("lvs: 2\ncovers: [SNAP-1]\nexpect: {SNAP-1: {}}\n" + body)
    return path


def test_a_role_naming_no_viewer_is_a_file_line_error(tmp_path: Path) -> None:
    path = scenario(tmp_path, "viewers:\n  - id: v1\nroles: {viewer: v9}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line == 6 and "no viewer 'v9'" in str(caught.value)


def test_roles_default_to_none() -> None:
    loaded = load_scenario(ROOT / "scenarios" / "legacy-primary.yaml")
    assert loaded.roles.viewer == "v1" and not loaded.roles.primary


def test_for_viewer_replaces_only_the_role_viewer() -> None:
    loaded = load_scenario(ROOT / "scenarios" / "late-join-mid-stream.yaml")
    replaced = for_viewer(loaded, VIEWER_CMD)
    kinds = {v.id: (v.kind, v.command, v.join) for v in replaced.viewers}
    assert kinds == {"v1": ("reference", None, 0.0), "v2": ("external", VIEWER_CMD, 3)}
    assert loaded.viewers[1].kind == "reference"  # the loaded scenario is untouched


def test_for_primary_keeps_the_stream_for_the_placeholders() -> None:
    loaded = load_scenario(ROOT / "scenarios" / "bandwidth-starvation.yaml")
    replaced = for_primary(loaded, PRIMARY_CMD + " --bitrate {bitrate}")
    assert replaced.primary.kind == "external" and replaced.primary.stream == {"bitrate": 1000000}


@pytest.mark.parametrize(
    ("name", "role", "command", "reason"),
    [
        ("legacy-primary", "primary", PRIMARY_CMD, "declares no primary role"),
        ("unknown-messages", "viewer", VIEWER_CMD, "declares no viewer role"),
        ("bandwidth-starvation", "primary", PRIMARY_CMD, "bitrate=1000000 and the command has no"),
        ("keyframes-mid-stream", "primary", PRIMARY_CMD, "gop=15"),
        ("pause-resume", "primary", PRIMARY_CMD, "test-control interface: pause"),
        (
            "late-join-mid-reconfiguration",
            "primary",
            PRIMARY_CMD,
            "test-control interface: restart_encoder",
        ),
        ("client-background", "viewer", VIEWER_CMD, "Viewer's test-control interface: background"),
    ],
)
def test_a_setting_the_command_cannot_receive_makes_the_scenario_not_applicable(
    name: str, role: str, command: str, reason: str
) -> None:
    loaded = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    with pytest.raises(NotApplicable, match=reason.replace("(", r"\(")):
        (for_viewer if role == "viewer" else for_primary)(loaded, command)  # type: ignore[operator]


def test_a_control_placeholder_or_url_makes_control_scenarios_applicable() -> None:
    loaded = load_scenario(ROOT / "scenarios" / "pause-resume.yaml")
    chosen = for_primary(loaded, PRIMARY_CMD + " --control {control}").primary
    assert chosen.kind == "external" and str(chosen.control).startswith("http://127.0.0.1:")
    assert for_primary(loaded, PRIMARY_CMD, "http://10.0.0.2:8080").primary.control


def test_a_stream_state_wait_needs_the_status_route_of_the_control_interface() -> None:
    """late-join-mid-reconfiguration waits for the Primary's state: GET /status reports it."""
    loaded = load_scenario(ROOT / "scenarios" / "late-join-mid-reconfiguration.yaml")
    assert for_primary(loaded, PRIMARY_CMD + " --control {control}").primary.control


def test_a_version_1_viewer_needs_the_version_placeholder(tmp_path: Path) -> None:
    path = scenario(tmp_path, "viewers:\n  - {id: v1, version: 1}\nroles: {viewer: v1}\n")
    with pytest.raises(NotApplicable, match=r"version 1 and the command has no \{version\}"):
        for_viewer(load_scenario(path), VIEWER_CMD)
    assert for_viewer(load_scenario(path), VIEWER_CMD + " -V {version}").viewers[0].version == 1


@pytest.mark.parametrize(
    ("command", "role", "words"),
    [
        (
            "v {host}:{port} {colour}",
            "viewer",
            "unknown placeholder {colour} in the viewer command",
        ),
        ("p {telemetry}", "primary", "unknown placeholder {telemetry}"),
        ("v {host", "viewer", "malformed placeholder"),
        ("   ", "viewer", "empty"),
    ],
)
def test_a_bad_command_is_one_line_error(command: str, role: str, words: str) -> None:
    with pytest.raises(CommandError) as caught:
        check_command(command, role)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_every_placeholder_of_a_role_is_accepted_and_expanded_with_its_environment() -> None:
    for known in (VIEWER_PLACEHOLDERS, PRIMARY_PLACEHOLDERS):
        role = "viewer" if known is VIEWER_PLACEHOLDERS else "primary"
        command = " ".join(f"{{{n}}}" for n in known) + " {{literal}}"
        check_command(command, role)
        values = {n: f"<{n}>" for n in known}
        assert expand(command, values) == " ".join(values.values()) + " {literal}"
        assert environment(values)["LVS_HOST"] == "<host>"


def test_a_viewer_with_a_control_interface_can_be_put_in_the_background() -> None:
    """client-background drives the Viewer's background/foreground (PROTOCOL.md 15): a
    testee Viewer serving the interface where {control} says plays it; one without does
    not, unless a person (--operator) does it on the device."""
    loaded = load_scenario(ROOT / "scenarios" / "client-background.yaml")
    with pytest.raises(NotApplicable, match="Viewer's test-control interface: background"):
        for_viewer(loaded, VIEWER_CMD)
    served = for_viewer(loaded, VIEWER_CMD + " --control {control}")
    (testee,) = [v for v in served.viewers if v.id == "v1"]
    assert testee.control and testee.control.startswith("http://127.0.0.1:")
    assert for_viewer(loaded, VIEWER_CMD, "http://10.0.0.3:8081").viewers[0].control
    assert for_viewer(loaded, VIEWER_CMD, operator=True).viewers[0].control is None


def test_an_operator_stands_in_for_the_primarys_control_interface_not_its_status() -> None:
    """Actions have an operator form; the Primary's own stream state (GET /status) has not."""
    actions = load_scenario(ROOT / "scenarios" / "pause-resume.yaml")
    with pytest.raises(NotApplicable, match="test-control interface: pause"):
        for_primary(actions, PRIMARY_CMD)
    assert for_primary(actions, PRIMARY_CMD, operator=True).primary.kind == "external"
    status = load_scenario(ROOT / "scenarios" / "late-join-mid-reconfiguration.yaml")
    with pytest.raises(NotApplicable, match="GET /status"):
        for_primary(status, PRIMARY_CMD, operator=True)
