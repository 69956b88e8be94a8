"""External peers in a soak: the testee Primary and/or external Viewers, judged apart.

`harness soak --primary-command CMD` runs a third party's Primary instead of the
reference one, and `--viewer-command CMD --external-viewers N` adds N external
Viewers to the population; both are started with the placeholders and environment
of scenarios and certification (harness/scenarios/placeholders.py, docs/certify.md)
and owned like a scenario's testees (harness/scenarios/external.py).

Judging is certification's (harness/certify/judge.py), online: each record goes to
the testee's engine if it is the testee's (the tap next to it, its telemetry), to
the harness's engine if it is a reference peer's, to both if it is no peer's wire or
telemetry (actions, faults, notes, status). The testee's engine judges the rules of
the testee's sides (and BOTH), the harness's engine the rules of the reference
peers' sides (and BOTH). A FAIL in the harness's engine is a harness fault: the
testee's verdicts of that window are INCONCLUSIVE, never a testee FAIL.

Where the external Primary offers no test-control interface (PROTOCOL.md section 15),
the nemesis draws none of the steps only that interface can deliver (reconfigure,
restart_encoder, pause, stop_stream), and the schedule says which it left out and why.
"""

from __future__ import annotations

import random
import re
import shlex
import shutil
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.certify.judge import PRIMARY, VIEWER, side_rules
from harness.certify.substitute import CommandError, check_command
from harness.checks.verdict import Status, Verdict
from harness.scenarios.control import PRIMARY_ROUTES
from harness.scenarios.network import PRIMARY_LIFECYCLE
from harness.scenarios.placeholders import named
from harness.soak.profile import Limit
from harness.trace import PRIMARY_SIDE, Record, viewer_tap_name

LOOPBACK = "127.0.0.1"
CONTROL_PLACEHOLDERS = frozenset({"control", "control_port"})
TELEMETRY = "telemetry"
# How external Viewers are named in the trace: x01, x02, ... (the population is v01, ...);
# a rejoin after a kill is a new incarnation, x01r2 (harness/soak/nemesis.py).
EXTERNAL_PREFIX = "x"
INCARNATION = re.compile(r"r\d+$")
# The sampled processes (harness/soak/sampler.py) that are the harness's beside a testee,
# and the names the testees' processes are sampled under.
HARNESS_PROCESSES = frozenset({"harness", "viewers"})
TESTEE_PRIMARY_PROCESS = "primary"
TESTEE_VIEWER_PROCESS = "external"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _control_url(command: str, control: str | None) -> str | None:
    """The test-control interface's base URL: the one given, or a free loopback port
    where the command names {control}/{control_port}; None when it offers none."""
    if control is not None:
        return control
    if named(command) & CONTROL_PLACEHOLDERS:
        return f"http://{LOOPBACK}:{free_port()}"
    return None


def check_program(command: str, option: str) -> None:
    """CommandError (one line) when the command's program cannot be found here."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"{option}: cannot parse {command!r}: {exc}") from None
    program = argv[0] if argv else ""
    if "{" in program:
        return  # named by a placeholder: known only when it starts
    if shutil.which(program) is None:
        raise CommandError(f"{option}: no such program {program!r} (command {command!r})")


@dataclass(frozen=True)
class SoakTestees:
    """What the command line asked for: an external Primary, external Viewers, or both."""

    primary_command: str | None = None
    primary_control: str | None = None  # --primary-control URL
    viewer_command: str | None = None
    external_viewers: int = 0
    # --primary-address: the Primary listens there (a device); without a command it was
    # started by hand, and the harness can neither start nor restart it.
    primary_address: str | None = None

    @property
    def any(self) -> bool:
        return self.primary_external or self.viewers_external

    @property
    def primary_external(self) -> bool:
        return self.primary_command is not None or self.primary_address is not None

    @property
    def primary_by_hand(self) -> str | None:
        """The --primary-address of a Primary the harness does not run (no command)."""
        return self.primary_address if self.primary_command is None else None

    @property
    def viewers_external(self) -> bool:
        return self.viewer_command is not None and self.external_viewers > 0

    def viewer_ids(self) -> list[str]:
        if not self.viewers_external:
            return []
        width = max(2, len(str(self.external_viewers)))
        return [f"{EXTERNAL_PREFIX}{i:0{width}d}" for i in range(1, self.external_viewers + 1)]

    def check(self, stream: Mapping[str, Any], primary_deviations: Sequence[str]) -> None:
        """CommandError, one line, for anything that stops these testees from running."""
        if self.viewer_command is not None and self.external_viewers < 1:
            raise CommandError("--external-viewers must be at least 1")
        if self.primary_control is not None and not self.primary_external:
            raise CommandError("--primary-control needs --primary-command or --primary-address")
        if self.primary_external and primary_deviations:
            raise CommandError(
                "the profile's primary deviations ("
                f"{', '.join(primary_deviations)}) are the reference Primary's; "
                "an external Primary cannot take them"
            )
        if self.primary_command is not None:
            check_command(self.primary_command, PRIMARY)
            check_program(self.primary_command, "--primary-command")
            missing = sorted(k for k in stream if k not in named(self.primary_command))
            if missing:
                keys = ", ".join(f"{{{k}}}" for k in missing)
                raise CommandError(
                    f"the profile's stream sets {', '.join(missing)} and --primary-command "
                    f"has no {keys}"
                )
        if self.viewer_command is not None:
            check_command(self.viewer_command, VIEWER)
            check_program(self.viewer_command, "--viewer-command")

    def primary_control_url(self) -> str | None:
        assert self.primary_external
        if self.primary_command is None:
            return self.primary_control  # a device started by hand: only the URL given
        return _control_url(self.primary_command, self.primary_control)

    def viewer_control_url(self) -> str | None:
        assert self.viewer_command is not None
        return _control_url(self.viewer_command, None)


def _actions(kind: str) -> set[str]:
    """What a nemesis kind's steps do (their actions' `do`)."""
    from harness.soak.nemesis import KINDS, Draw

    _, _, build = KINDS[kind]
    begin, end = build(Draw(random.Random(0), "probe", 1.0, ["probe"]))
    return {a["do"] for a in (*begin, *end)}


def needs_control(kind: str) -> bool:
    """A nemesis kind whose steps only a Primary's test-control interface can deliver."""
    return bool(_actions(kind) & set(PRIMARY_ROUTES))


def restarts_primary(kind: str) -> bool:
    """A nemesis kind whose steps end and start the Primary's process."""
    return bool(_actions(kind) & PRIMARY_LIFECYCLE)


def left_out(
    kinds: Iterable[str], primary_control: str | None, external: bool,
    device: str | None = None,
) -> dict[str, str]:
    """The nemesis kinds an external Primary cannot be given, each with the reason.

    `device`: the --primary-address of a Primary started by hand (no command), which
    the harness cannot restart."""
    if not external:
        return {}
    no_control = ("the external Primary has no test-control interface (PROTOCOL.md 15: "
                  "--primary-control URL or {control} in --primary-command)")
    by_hand = (f"the Primary at {device} was started by hand (no --primary-command): "
               "the harness cannot restart it")
    out: dict[str, str] = {}
    for kind in kinds:
        if primary_control is None and needs_control(kind):
            out[kind] = no_control
        elif device is not None and restarts_primary(kind):
            out[kind] = by_hand
    return out


# --- judging ------------------------------------------------------------------------


@dataclass
class Split:
    """Whose records are whose (certify's partition, harness/certify/judge.py, for a
    population): the testee Primary's tap, the external Viewers' taps and telemetry."""

    primary_testee: bool
    testee_viewers: frozenset[str]  # their first names; every incarnation is theirs too
    # The testee Primary is a process here (not a device at --primary-address started by
    # hand), so its memory and descriptors can be sampled and limited.
    primary_process: bool = True
    _known: dict[str, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._known[PRIMARY_SIDE] = self.primary_testee

    def _testee_viewer(self, viewer: str) -> bool:
        return INCARNATION.sub("", viewer) in self.testee_viewers

    def owner(self, record: Record) -> bool | None:
        """True: the testee's; False: a reference peer's; None: shared by both sides."""
        tap = record.get("tap")
        if tap is not None:
            mine = self._known.get(tap)
            if mine is None:
                viewer = str(tap).partition(":")[2]
                mine = self._known[tap] = (
                    viewer_tap_name(viewer) == tap and self._testee_viewer(viewer))
            return mine
        if record.get("kind") == TELEMETRY:
            return self._testee_viewer(str(record.get("viewer", "")))
        return None

    def partition(self, records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
        """(testee records, harness records); each keeps the shared ones, in trace order."""
        from harness.certify.judge import split

        return split(records, self.owner)

    @classmethod
    def of_case(cls, case: Mapping[str, Any]) -> Split | None:
        """The split of a FAIL's case file (harness/soak/shrink.py), None without a testee."""
        viewers = frozenset(case.get("external_viewers") or {})
        primary = "primary_command" in case  # None for a device started by hand
        return cls(primary, viewers) if primary or viewers else None

    def judge(self) -> Callable[[list[Record], Any], list[Verdict]]:
        """A scenario run's judge (harness/scenarios/runner.py `Judge`) for a reproduction:
        the scenario's `expect` on the testee's records, INCONCLUSIVE where the reference
        peers FAILed a rule of theirs (as in the soak and in certification)."""

        def judge(records: list[Record], scenario: Any) -> list[Verdict]:
            from harness.certify.judge import rule_params
            from harness.checks.engine import check_records

            testee, harness = self.partition(records)
            verdicts = check_records(testee, rule_params(scenario, list(scenario.expect)),
                                     scenario.timings)
            faults = [v.requirement for v in check_records(
                harness, rule_params(scenario, self.harness_rules()), scenario.timings)
                if v.status is Status.FAIL]
            if not faults:
                return verdicts
            why = f"harness fault: {', '.join(faults)} FAILed on {self.harness_name()}"
            return [Verdict(v.requirement, Status.INCONCLUSIVE, f"{why} ({v.status.value} "
                            "otherwise)", v.evidence) for v in verdicts]

        return judge

    def testee_rules(self) -> list[str]:
        return _rules(self.testee_roles())

    def harness_rules(self) -> list[str]:
        """The other side's rules, as certification judges the harness; with both roles
        external, the Viewer rules (on the population, which is always reference)."""
        other = [r for r in (PRIMARY, VIEWER) if r not in self.testee_roles()]
        return _rules(other or [VIEWER])

    def testee_roles(self) -> list[str]:
        return ([PRIMARY] if self.primary_testee else []) + (
            [VIEWER] if self.testee_viewers else [])

    def testee_name(self) -> str:
        parts = (["the external Primary"] if self.primary_testee else []) + (
            [f"external Viewer{'s' if len(self.testee_viewers) > 1 else ''} "
             + ", ".join(sorted(self.testee_viewers))] if self.testee_viewers else [])
        return " and ".join(parts)

    def harness_name(self) -> str:
        return "the reference Viewers" if self.primary_testee else "the reference Primary"

    def drift_limits(self, limits: Sequence[Limit], sampled: Iterable[str]
                     ) -> tuple[list[Limit], list[Limit]]:
        """(the testee's drift limits, the harness's), from a profile's.

        A profile names the processes of a soak of the reference peers: `harness` (the
        Primary, taps and checkers) and `viewers` (the population). Beside a testee
        those two are the harness, so a limit on them is its health (a FAIL there is a
        harness fault), and the same limit binds the testee's process in that place:
        `harness.X` the external Primary's (`primary.X`; none for a device started by
        hand, which has no process here to sample), `viewers.X` each external
        Viewer's (`external.x01.X`, of the `sampled` series). Limits on the stream's
        and the host's figures stay where they were.
        """
        sampled = list(sampled)
        testee: list[Limit] = []
        harness: list[Limit] = []
        for limit in limits:
            process, _, figure = limit.metric.partition(".")
            if process not in HARNESS_PROCESSES:
                testee.append(limit)
                continue
            harness.append(limit)
            if process == "harness" and self.primary_testee and self.primary_process:
                testee.append(replace(limit, metric=f"{TESTEE_PRIMARY_PROCESS}.{figure}"))
            if process == "viewers":
                testee += [replace(limit, metric=name) for name in sampled
                           if name.startswith(f"{TESTEE_VIEWER_PROCESS}.")
                           and name.endswith(f".{figure}")]
        return testee, harness


def _rules(roles: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for role in roles:
        seen.update(dict.fromkeys(side_rules(role)))
    return list(seen)

