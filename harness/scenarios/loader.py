"""Load scenario files: YAML -> schema check -> `Scenario`, with file:line on every error.

A broken file becomes a `ScenarioError` naming the file, the line and what
is wrong; the suite reports it as that scenario's failure and runs the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from reference.protocol.deviations import Deviation
from reference.protocol.requirements import BY_ID
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

FORMAT_KEY = "lvs"
FORMAT_VERSION = 2
# A top-level `lvs:` key at the start of a line: how a YAML file says it is an LVS scenario.
_FORMAT_LINE = re.compile(rb"^" + FORMAT_KEY.encode() + rb"[ \t]*:", re.MULTILINE)
DEFAULT_TIMEOUT = 60.0


class ScenarioError(Exception):
    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass
class ViewerSpec:
    id: str
    kind: str = "reference"
    version: int = 2
    decode: bool = True
    secret: str | None = None
    codec_backend: str = "auto"
    deviations: list[str] = field(default_factory=list)
    join: float | str = 0.0
    command: str | None = None
    control: str | None = None  # base URL of an external Viewer's test-control interface


@dataclass
class PrimarySpec:
    kind: str = "reference"
    version: int = 2
    stream: dict[str, int] = field(default_factory=dict)
    codec_backend: str = "auto"
    deviations: list[str] = field(default_factory=list)
    autostart: bool = True
    command: str | None = None
    control: str | None = None


@dataclass
class Step:
    line: int
    at: float | None = None
    do: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    wait: dict[str, Any] | None = None
    within: float = 10.0
    hold: float | None = None

    def describe(self) -> str:
        if self.do:
            return f"{self.do} {self.args}" if self.args else self.do
        if self.wait is not None:
            return f"wait {self.wait} within {self.within:g} s"
        return f"hold {self.hold:g} s"


@dataclass(frozen=True)
class Roles:
    """Which roles a testee may play in a scenario (`roles:`; docs/certify.md).

    `viewer` is the id of the reference Viewer a testee Viewer replaces, `primary`
    whether a testee Primary may replace the Primary. A scenario whose point is a
    deliberately legacy or raw peer keeps that peer as harness and offers only the other role.
    """

    viewer: str | None = None
    primary: bool = False


@dataclass
class Scenario:
    name: str
    path: Path
    covers: list[str]
    expect: dict[str, dict[str, Any]]
    description: str = ""
    timeout: float = 60.0
    seed: int | None = None
    secret: str = "lvs-secret"
    timings: Timings = DEFAULT_TIMINGS
    timing_scale: float = 1.0  # `timings.scale`: what a testee learns as {timing_scale}
    primary: PrimarySpec = field(default_factory=PrimarySpec)
    viewers: list[ViewerSpec] = field(default_factory=list)
    fault_path: list[str] = field(default_factory=list)
    timeline: list[Step] = field(default_factory=list)
    roles: Roles = field(default_factory=Roles)
    line: int = 1


def _schema() -> dict[str, Any]:
    text = resources.files("harness.scenarios").joinpath("scenario.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    # The switch names come from the protocol core's table, never from a copy of it.
    schema["$defs"]["deviations"]["items"] = {"enum": [d.value for d in Deviation]}
    return schema


SCHEMA = _schema()
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _line_of(node: yaml.Node | None, path: Iterable[Any]) -> int | None:
    """The 1-based line of the YAML node at `path` (keys and indices), or its nearest parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == step), None)
            if pair is None:
                break
            # A field is where its key is written, even when its value starts below.
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _error_path(error: jsonschema.ValidationError) -> list[Any]:
    """Where the problem is written: for a bad or unknown key, the key itself."""
    path = list(error.absolute_path)
    if error.validator == "propertyNames" or "propertyNames" in error.schema_path:
        path.append(error.instance)
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        if unknown:
            path.append(unknown[0])
    return path


def _schema_problem(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    top_level = not list(error.absolute_path)
    if top_level and error.validator == "required" and FORMAT_KEY in error.message:
        return (
            f"not marked as an LVS scenario: add `{FORMAT_KEY}: {FORMAT_VERSION}` "
            "as a top-level key"
        )
    if list(error.absolute_path) == [FORMAT_KEY]:
        return f"{FORMAT_KEY}: this harness reads scenario format {FORMAT_VERSION}"
    if error.validator == "oneOf" and list(error.absolute_path)[:1] == ["timeline"]:
        return f"{where}: a step needs exactly one of 'do', 'wait' or 'hold'"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message} (see harness/scenarios/scenario.schema.json)"
    return f"{where}: {error.message}"


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        context = ""
        if exc.context_mark is not None and exc.context:
            context = f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ScenarioError(path, line, f"not valid YAML: {exc.problem}{context}") from None
    if not isinstance(data, dict):
        raise ScenarioError(path, 1, "a scenario is a YAML mapping (name, covers, expect, ...)")
    errors = list(_VALIDATOR.iter_errors(data))
    if errors:
        first = min(errors, key=lambda e: _line_of(root, _error_path(e)) or 0)
        raise ScenarioError(path, _line_of(root, _error_path(first)), _schema_problem(first))
    return _build(path, root, data)


def _build(path: Path, root: yaml.Node | None, data: dict[str, Any]) -> Scenario:
    def fail(keys: list[Any], problem: str) -> ScenarioError:
        return ScenarioError(path, _line_of(root, keys), problem)

    expect = {k: dict(v or {}) for k, v in data["expect"].items()}
    for key in list(expect) + list(data["covers"]):
        if key not in BY_ID:
            where = ["expect", key] if key in expect else ["covers"]
            raise fail(where, f"{key} is not in the requirement catalogue")
    missing = [c for c in data["covers"] if c not in expect]
    if missing:
        raise fail(["covers"], f"covers {', '.join(missing)} but does not expect them")
    viewers = [ViewerSpec(**v) for v in data.get("viewers", [])]
    ids = [v.id for v in viewers]
    if len(set(ids)) != len(ids):
        raise fail(["viewers"], f"viewer ids must be unique: {ids}")
    for i, v in enumerate(viewers):
        if v.kind == "external" and not v.command:
            raise fail(["viewers", i], f"external viewer {v.id} needs a command")
    primary = PrimarySpec(**data.get("primary", {}))
    if primary.kind == "external" and not primary.command:
        raise fail(["primary"], "an external primary needs a command")
    fault_path = list(data.get("path", []))
    steps = []
    for i, raw in enumerate(data.get("timeline", [])):
        step = Step(
            line=_line_of(root, ["timeline", i]) or 0,
            at=raw.get("at"),
            do=raw.get("do"),
            args=dict(raw.get("with", {})),
            wait=raw.get("wait"),
            within=float(raw.get("within", 10.0)),
            hold=raw.get("hold"),
        )
        _check_step(step, ids, fault_path, lambda problem, i=i: fail(["timeline", i], problem))
        steps.append(step)
    timings = _timings(data.get("timings", {}))
    raw_roles = data.get("roles", {})
    roles = Roles(viewer=raw_roles.get("viewer"), primary=bool(raw_roles.get("primary", False)))
    if roles.viewer is not None and roles.viewer not in ids:
        raise fail(
            ["roles", "viewer"],
            f"roles: no viewer {roles.viewer!r} to replace (viewers: {', '.join(ids) or 'none'})",
        )
    return Scenario(
        name=data.get("name", path.stem),
        path=path,
        covers=list(data["covers"]),
        expect=expect,
        description=data.get("description", ""),
        timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
        seed=data.get("seed"),
        secret=data.get("secret", "lvs-secret"),
        timings=timings,
        timing_scale=float(data.get("timings", {}).get("scale", 1.0)),
        primary=primary,
        viewers=viewers,
        fault_path=fault_path,
        timeline=steps,
        roles=roles,
        line=_line_of(root, []) or 1,
    )


def _check_step(step: Step, viewers: list[str], fault_path: list[str], fail: Any) -> None:
    needs = {
        "toxic": "toxiproxy",
        "remove_toxic": "toxiproxy",
        "disable_proxy": "toxiproxy",
        "enable_proxy": "toxiproxy",
        "fault": "frame_proxy",
        "remove_fault": "frame_proxy",
        "impair": "packet",
        "clear_impairment": "packet",
    }
    if step.do in needs and needs[step.do] not in fault_path:
        raise fail(f"'{step.do}' needs '{needs[step.do]}' in the scenario's path")
    named = step.args.get("viewer") or (step.wait or {}).get("viewer")
    if named is not None and named not in viewers:
        raise fail(f"no viewer {named!r} (viewers: {', '.join(viewers) or 'none'})")
    if step.do == "fault":
        from harness.chaos.faults import make_fault

        try:
            make_fault(dict(step.args))
        except (ValueError, TypeError, KeyError) as exc:
            raise fail(f"bad frame fault: {exc}") from None
    if step.do in ("impair", "clear_impairment"):
        from harness.packet.impairment import directions, parse_step

        try:
            parse_step(step.args) if step.do == "impair" else directions(step.args)
        except ValueError as exc:
            raise fail(f"bad impairment: {exc}") from None
    if step.do in ("background", "foreground", "kill_connection") and named is None:
        raise fail(f"'{step.do}' needs 'with: {{viewer: <id>}}'")
    if step.do == "toxic" and "type" not in step.args:
        raise fail("a toxic needs a 'type' (latency, bandwidth, timeout, ...)")


def _timings(raw: dict[str, Any]) -> Timings:
    values = {k: v for k, v in raw.items() if k != "scale"}
    base = Timings(**{**_defaults(), **values})
    scale = raw.get("scale")
    return base.scaled(scale) if scale else base


def _defaults() -> dict[str, Any]:
    return {f: getattr(DEFAULT_TIMINGS, f) for f in DEFAULT_TIMINGS.__dataclass_fields__}


def declares_scenario(path: Path) -> bool:
    """Whether a YAML file says it is an LVS scenario (a top-level `lvs:` key).

    Read as bytes and matched by line, not parsed: collection looks at every YAML
    file under the given folders, most of which belong to other projects.
    """
    try:
        return _FORMAT_LINE.search(path.read_bytes()) is not None
    except OSError:
        return False


@dataclass(frozen=True)
class Timing:
    """What collection needs to know of a scenario before running it."""

    timeout: float = DEFAULT_TIMEOUT  # the scenario's own bound
    expected: float = 0.0  # a lower bound of its run time, for longest-first scheduling


def _number(value: object, default: float = 0.0) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else default  # type: ignore[arg-type]


# How much of a wait's deadline, or of a raw client's linger, a run typically spends: waits
# on protocol timers end well inside their deadline, raw clients are usually answered at once.
WAIT_SHARE, LINGER_SHARE = 0.4, 0.3


def _expected_duration(data: dict[str, Any]) -> float:
    """A rough estimate of a scenario's run time from its script, to run long ones first.

    `at` times, holds and outages count in full; waits and raw clients count in part
    (WAIT_SHARE, LINGER_SHARE). It orders scenarios and decides nothing else.
    """
    t = 0.0
    for step in data.get("timeline") or []:
        if not isinstance(step, dict):
            continue
        given = step.get("with")
        args: dict[str, Any] = given if isinstance(given, dict) else {}
        t = max(t, _number(step.get("at")))
        t += _number(step.get("hold")) + _number(args.get("down_for"))
        if "wait" in step:
            t += WAIT_SHARE * _number(step.get("within"), 10.0)
        if step.get("do") == "raw":
            t += LINGER_SHARE * _number(args.get("linger"), 1.0)
    joins = [_number(v.get("join")) for v in data.get("viewers") or [] if isinstance(v, dict)]
    return max([t, *joins])


def declared_timing(path: Path) -> Timing:
    """The scenario's own `timeout` and expected run time; defaults if the file is broken."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return Timing()
    if not isinstance(data, dict):
        return Timing()
    timeout = _number(data.get("timeout"), DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
    return Timing(timeout=timeout, expected=_expected_duration(data))


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """Scenario files under the given paths: marked `*.yaml` in folders, any file named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += [p for p in sorted(path.glob("*.yaml")) if declares_scenario(p)]
        elif path.suffix == ".yaml":
            files.append(path)
    return files


def declared_coverage(folder: Path) -> dict[str, list[str]]:
    """Requirement ID -> the scenarios that cover it; broken files are skipped here."""
    coverage: dict[str, list[str]] = {}
    for path in scenario_files([folder]):
        try:
            scenario = load_scenario(path)
        except ScenarioError:
            continue
        for requirement in scenario.covers:
            coverage.setdefault(requirement, []).append(scenario.name)
    return coverage
