"""Actions on peers that offer no test-control interface: a person, or not applicable.

A device under test (a phone app, a camera) may have no HTTP interface for the
harness to reconfigure it or send it to the background. With `--operator`, the
runner prints the instruction at the console and carries on when the trace shows
that it was carried out (the table below: action -> what must appear); at the
deadline the scenario stops, its covered rules INCONCLUSIVE. Without `--operator`,
a scenario that needs such an action is NOT_APPLICABLE, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

from harness.scenarios.control import PRIMARY_ROUTES, VIEWER_ROUTES
from harness.scenarios.loader import Scenario, Step
from harness.trace import P2V, PRIMARY_SIDE, V2P, Record, TraceWriter, viewer_tap_name
from reference.protocol.causes import Cause
from reference.protocol.errors import ProtocolError
from reference.protocol.messages import ReqKeyframe, StreamStateMessage, decode_message
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind

DEFAULT_DEADLINE = 60.0  # seconds a person gets to carry out an instruction
# How a suite run (pytest, maybe xdist workers) hands the plan to each scenario: the deadline.
OPERATOR_ENV = "LVS_CERTIFY_OPERATOR"


@functools.cache
def console() -> TextIO:
    """Where a person reads prompts: the terminal, even when pytest captures the output."""
    try:
        return open("/dev/tty", "w", encoding="utf-8")
    except OSError:
        return sys.__stderr__ or sys.stderr


@dataclass(frozen=True)
class ControlPlan:
    """How a scenario's actions reach external peers that have no test-control interface.

    operator: prompt a person at `prompt` (default: standard output) and wait up to
    `deadline` seconds for the trace to show the action; False: such a scenario is
    NOT_APPLICABLE.
    """

    operator: bool = False
    deadline: float = DEFAULT_DEADLINE
    prompt: TextIO | None = None

    def to_environment(self) -> dict[str, str]:
        return {OPERATOR_ENV: f"{self.deadline:g}"} if self.operator else {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ControlPlan:
        """The plan a suite run was given (`to_environment`); no operator if none."""
        value = (os.environ if environ is None else environ).get(OPERATOR_ENV)
        if not value:
            return cls()
        return cls(operator=True, deadline=float(value), prompt=console())


class OperatorTimeout(Exception):
    """The instruction was not carried out (as far as the trace shows) by the deadline."""


def stream_state(record: Record) -> StreamStateMessage | None:
    """The STREAM_STATE a Primary sent, as its own tap saw it, or None."""
    if record.get("kind") != "frame" or record.get("tap") != PRIMARY_SIDE:
        return None
    text = record.get("msg")
    if record.get("dir") != P2V or not isinstance(text, str):
        return None
    if not text.startswith(StreamStateMessage.NAME):
        return None
    try:
        message = decode_message(text.encode("utf-8"))
    except ProtocolError:
        return None
    return message if isinstance(message, StreamStateMessage) else None


def newest_epoch(records: list[Record]) -> int:
    """The largest epoch the Primary announced in `records` (-1 if none)."""
    epochs = [m.epoch for m in map(stream_state, records) if m is not None]
    return max(epochs, default=-1)


# Shows(record, args, epoch before the prompt) -> True when the record proves the action.
Shows = Callable[[Record, dict[str, Any], int], bool]


def _new_epoch(record: Record, args: dict[str, Any], before: int) -> bool:
    message = stream_state(record)
    return message is not None and message.epoch > before


def _enters(state: StreamState) -> Shows:
    def shows(record: Record, args: dict[str, Any], before: int) -> bool:
        message = stream_state(record)
        return message is not None and message.state is state

    return shows


def _backgrounded(record: Record, args: dict[str, Any], before: int) -> bool:
    return (
        record.get("kind") == "telemetry"
        and record.get("viewer") == args.get("viewer")
        and record.get("event") == RecordKind.STATE.value
        and record.get("cause") == Cause.CLIENT_BACKGROUND.value
    )


def _asks_keyframe(record: Record, args: dict[str, Any], before: int) -> bool:
    return (
        record.get("kind") == "frame"
        and record.get("tap") == viewer_tap_name(str(args.get("viewer")))
        and record.get("dir") == V2P
        and str(record.get("msg", "")).startswith(ReqKeyframe.NAME)
    )


def _connection_closed(record: Record, args: dict[str, Any], before: int) -> bool:
    return (
        record.get("kind") == "conn"
        and record.get("tap") == viewer_tap_name(str(args.get("viewer")))
        and record.get("event") == "close"
    )


@dataclass(frozen=True)
class Instruction:
    text: str  # what the person is asked to do, "{viewer}" filled from the step
    evidence: str  # what in the trace shows it was done
    shows: Shows


_PRIMARY_STATE = f"a {StreamStateMessage.NAME} from the Primary"
INSTRUCTIONS: dict[str, Instruction] = {
    "reconfigure": Instruction(
        "change the resolution on the device now",
        f"{_PRIMARY_STATE} with a new epoch",
        _new_epoch,
    ),
    "restart_encoder": Instruction(
        "restart the camera (the encoder) on the device now",
        f"{_PRIMARY_STATE} with a new epoch",
        _new_epoch,
    ),
    "pause": Instruction(
        "pause the stream on the device now",
        f"{_PRIMARY_STATE} {StreamState.PAUSED.name}",
        _enters(StreamState.PAUSED),
    ),
    "resume": Instruction(
        "resume the stream on the device now",
        f"{_PRIMARY_STATE} {StreamState.ACTIVE.name}",
        _enters(StreamState.ACTIVE),
    ),
    "stop_stream": Instruction(
        "stop the stream on the device now",
        f"{_PRIMARY_STATE} {StreamState.STOPPED.name}",
        _enters(StreamState.STOPPED),
    ),
    "start_stream": Instruction(
        "start the stream on the device now",
        f"{_PRIMARY_STATE} {StreamState.ACTIVE.name}",
        _enters(StreamState.ACTIVE),
    ),
    "background": Instruction(
        "send the Viewer app {viewer} to the background now",
        f"telemetry: {ViewerState.RECOVERING.value} with cause {Cause.CLIENT_BACKGROUND.value}",
        _backgrounded,
    ),
    "foreground": Instruction(
        "bring the Viewer app {viewer} back to the foreground now",
        f"a {ReqKeyframe.NAME} from the Viewer",
        _asks_keyframe,
    ),
    "kill_connection": Instruction(
        "cut the Viewer {viewer}'s network connection now (airplane mode on, then off)",
        "its connection closing",
        _connection_closed,
    ),
}


PRIMARY_INTERFACE = "the Primary's test-control interface"
VIEWER_INTERFACE = "the Viewer's test-control interface"
STATUS_NEED = "GET /status (waits on stream_state)"


def _needs(scenario: Scenario, operator: bool) -> dict[str, list[str]]:
    """Interface -> what of the timeline needs it, that neither it nor an operator serves."""
    primary = scenario.primary
    # A {control} placeholder gives the Primary a control URL at run time.
    primary_control = (
        primary.kind != "external"
        or bool(primary.control)
        or "{control" in (primary.command or "")
    )
    viewers = {v.id: v for v in scenario.viewers}
    needs: dict[str, list[str]] = {}

    def need(interface: str, what: str) -> None:
        listed = needs.setdefault(interface, [])
        if what not in listed:
            listed.append(what)

    for step in scenario.timeline:
        by_operator = operator and step.do in INSTRUCTIONS
        if step.do in PRIMARY_ROUTES and not primary_control and not by_operator:
            need(PRIMARY_INTERFACE, step.do)
        elif step.do in VIEWER_ROUTES and not by_operator:
            spec = viewers.get(str(step.args.get("viewer")))
            if spec is not None and spec.kind == "external" and not spec.control:
                need(VIEWER_INTERFACE, step.do)
        elif step.wait is not None and "stream_state" in step.wait and not primary_control:
            need(PRIMARY_INTERFACE, STATUS_NEED)
    return needs


def not_applicable(scenario: Scenario, plan: ControlPlan) -> str | None:
    """Why the scenario cannot run with these peers and this plan, or None if it can.

    "needs the Primary's test-control interface: reconfigure, restart_encoder"
    """
    needs = _needs(scenario, plan.operator)
    if not needs:
        return None
    return "needs " + "; ".join(f"{i}: {', '.join(what)}" for i, what in needs.items())


class Operator:
    """Asks a person to carry out an action and waits until the trace shows it."""

    def __init__(self, plan: ControlPlan, trace: TraceWriter, scenario: Scenario) -> None:
        self.plan = plan
        self.trace = trace
        self.scenario = scenario

    def handles(self, step: Step) -> bool:
        """Whether this step goes to the person: no interface can deliver it."""
        alone = replace(self.scenario, timeline=[step])
        return step.do in INSTRUCTIONS and bool(_needs(alone, operator=False))

    async def perform(self, step: Step) -> float:
        """Prompt, then wait; the trace time of the first evidence, or OperatorTimeout."""
        assert step.do is not None
        instruction = INSTRUCTIONS[step.do]
        seen = len(self.trace.records_from(0))
        before = newest_epoch(self.trace.records_from(0))
        text = instruction.text.format(viewer=step.args.get("viewer", ""))
        out = self.plan.prompt if self.plan.prompt is not None else sys.stdout
        print(
            f"[{self.scenario.name}] OPERATOR: {text} (within {self.plan.deadline:g} s); "
            f"waiting for {instruction.evidence}",
            file=out,
            flush=True,
        )
        self.trace.emit("note", text=f"operator asked: {text}")
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake(record: Record) -> None:
            loop.call_soon_threadsafe(changed.set)

        self.trace.subscribe(wake)
        deadline = loop.time() + self.plan.deadline
        try:
            while True:
                fresh = self.trace.records_from(seen)
                seen += len(fresh)
                for record in fresh:
                    if instruction.shows(record, step.args, before):
                        self.trace.emit("note", text=f"operator done: {instruction.evidence}")
                        # Just before its first evidence: what followed the action is judged.
                        return float(record["t"]) - 1e-6
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise OperatorTimeout(
                        f"operator: {text!r} not seen within {self.plan.deadline:g} s "
                        f"(waited for {instruction.evidence})"
                    )
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
        finally:
            self.trace.unsubscribe(wake)
