"""Put a testee in a scenario: the role's reference peer becomes the testee's command.

`for_viewer` and `for_primary` return a copy of the scenario in which the peer named
by its `roles:` is `kind: external` with the testee's command (placeholders are
expanded by the runner when the peer starts, harness/scenarios/placeholders.py).
When the replaced peer needs a setting the command cannot receive, or the timeline
needs an interface the testee does not offer, the scenario is not applicable to
that testee: `NotApplicable` says why, and the scenario is never run (no false FAIL).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterable

from harness.scenarios.loader import PrimarySpec, Scenario, ViewerSpec
from harness.scenarios.placeholders import (
    PRIMARY_PLACEHOLDERS,
    VIEWER_PLACEHOLDERS,
    named,
    unknown_placeholders,
)

VIEWER, PRIMARY = "viewer", "primary"
ROLES = (VIEWER, PRIMARY)
PLACEHOLDERS = {VIEWER: VIEWER_PLACEHOLDERS, PRIMARY: PRIMARY_PLACEHOLDERS}
DEFAULT_SECRET = str(Scenario.__dataclass_fields__["secret"].default)

# Timeline actions carried out through the Primary's test-control interface.
PRIMARY_CONTROL_ACTIONS = frozenset(
    {"reconfigure", "restart_encoder", "pause", "resume", "stop_stream", "start_stream"}
)
# Timeline actions no testee interface offers: the reference peer's own switches.
PRIMARY_ONLY_REFERENCE = {"legacy": "switches the Primary to version 1 mid-run"}
# Actions on a Viewer that need its test-control interface (the harness has no other way).
VIEWER_CONTROL_ACTIONS = frozenset({"background", "foreground"})


LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class NotApplicable(Exception):
    """This scenario cannot judge this testee; the message is the reason for the report."""


class CommandError(ValueError):
    """The testee command cannot be used at all (one line, before anything runs)."""


def check_command(command: str, role: str) -> None:
    """Refuse an empty or malformed command, or one naming a placeholder its role lacks."""
    if not command.strip():
        raise CommandError("the testee command is empty")
    try:
        unknown = unknown_placeholders(command, PLACEHOLDERS[role])
    except ValueError as exc:
        raise CommandError(f"malformed placeholder in {command!r}: {exc}") from None
    if unknown:
        known = " ".join(f"{{{n}}}" for n in PLACEHOLDERS[role])
        names = ", ".join(f"{{{n}}}" for n in unknown)
        raise CommandError(
            f"unknown placeholder {names} in the {role} command (a {role} gets {known}; "
            "write {{ and }} for literal braces)"
        )


def _missing(settings: Iterable[tuple[str, object]], command: str) -> list[str]:
    given = named(command)
    return [f"{key}={value}" for key, value in settings if key not in given]


def _timings_reason(scenario: Scenario, command: str) -> str | None:
    if scenario.timing_scale != 1.0 and "timing_scale" not in named(command):
        return (
            f"its timings are scaled by {scenario.timing_scale:g} and the command has no "
            "{timing_scale}"
        )
    return None


def _serves_control(command: str, control: str | None) -> bool:
    """The testee has a test-control interface: at a fixed URL, or where {control} says."""
    return control is not None or bool(named(command) & {"control", "control_port"})


def _control_url(command: str, control: str | None) -> str | None:
    if control is None and named(command) & {"control", "control_port"}:
        # The testee serves its interface where {control} says: a port chosen now.
        return f"http://{LOOPBACK}:{_free_port()}"
    return control


def viewer_reason(
    scenario: Scenario, command: str, control: str | None = None, *, operator: bool = False
) -> str | None:
    """Why a testee Viewer cannot play in this scenario, or None when it can."""
    vid = scenario.roles.viewer
    if vid is None:
        return "declares no viewer role"
    spec = next(v for v in scenario.viewers if v.id == vid)
    if spec.deviations:
        return f"its Viewer {vid} breaks rules on purpose ({', '.join(spec.deviations)})"
    given = named(command)
    if spec.version != 2 and "version" not in given:
        return f"its Viewer {vid} speaks version {spec.version} and the command has no {{version}}"
    secret = spec.secret if spec.secret is not None else scenario.secret
    if secret != DEFAULT_SECRET and "secret" not in given:
        return f"its Viewer {vid} uses its own secret and the command has no {{secret}}"
    for step in scenario.timeline:
        if (
            step.do in VIEWER_CONTROL_ACTIONS
            and step.args.get("viewer") == vid
            and not (operator or _serves_control(command, control))
        ):
            return f"needs the Viewer's test-control interface: {step.do} (line {step.line})"
    return _timings_reason(scenario, command)


def primary_reason(
    scenario: Scenario, command: str, control: str | None, *, operator: bool = False
) -> str | None:
    """Why a testee Primary cannot play in this scenario, or None when it can."""
    if not scenario.roles.primary:
        return "declares no primary role"
    spec = scenario.primary
    if spec.deviations:
        return f"its Primary breaks rules on purpose ({', '.join(spec.deviations)})"
    given = named(command)
    if spec.version != 2 and "version" not in given:
        return f"its Primary speaks version {spec.version} and the command has no {{version}}"
    if not spec.autostart:
        return "its Primary starts without a stream (autostart: false), which no command can ask"
    missing = _missing(sorted(spec.stream.items()), command)
    if missing:
        keys = ", ".join(f"{{{m.split('=')[0]}}}" for m in missing)
        return f"its stream sets {', '.join(missing)} and the command has no {keys}"
    has_control = _serves_control(command, control)
    for step in scenario.timeline:
        if step.do in PRIMARY_ONLY_REFERENCE:
            return f"{PRIMARY_ONLY_REFERENCE[step.do]} (line {step.line}: {step.do})"
        if step.do in PRIMARY_CONTROL_ACTIONS and not (has_control or operator):
            return f"needs the Primary's test-control interface: {step.do} (line {step.line})"
        if step.wait is not None and "stream_state" in step.wait and not has_control:
            return (
                f"waits for the Primary's own stream state (line {step.line}), which only "
                "its test-control interface reports (GET /status)"
            )
    return _timings_reason(scenario, command)


def for_viewer(
    scenario: Scenario, command: str, control: str | None = None, *, operator: bool = False
) -> Scenario:
    """The scenario with its role viewer replaced by the testee; NotApplicable says why not.

    With `operator`, actions the testee has no interface for are a person's to carry out
    (harness/scenarios/operator.py decides which have an operator form).
    """
    reason = viewer_reason(scenario, command, control, operator=operator)
    if reason is not None:
        raise NotApplicable(reason)
    control = _control_url(command, control)
    viewers: list[ViewerSpec] = [
        dataclasses.replace(v, kind="external", command=command, control=control)
        if v.id == scenario.roles.viewer
        else v
        for v in scenario.viewers
    ]
    return dataclasses.replace(scenario, viewers=viewers)


def for_primary(
    scenario: Scenario, command: str, control: str | None = None, *, operator: bool = False
) -> Scenario:
    """The scenario with its Primary replaced by the testee; NotApplicable says why not."""
    reason = primary_reason(scenario, command, control, operator=operator)
    if reason is not None:
        raise NotApplicable(reason)
    control = _control_url(command, control)
    primary: PrimarySpec = dataclasses.replace(
        scenario.primary, kind="external", command=command, control=control
    )
    return dataclasses.replace(scenario, primary=primary)


def substitute(
    scenario: Scenario,
    role: str,
    command: str,
    control: str | None = None,
    *,
    operator: bool = False,
) -> Scenario:
    if role == VIEWER:
        return for_viewer(scenario, command, control, operator=operator)
    return for_primary(scenario, command, control, operator=operator)
