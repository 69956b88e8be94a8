"""Run one scenario: peers, wire taps, fault injectors, the timeline, then the checkers.

The data path of a run:

    Viewer -> tap viewer_side:<id> -> [toxiproxy] -> [frame_proxy] -> tap primary_side -> Primary

(`packet` may sit anywhere in that list: harness/packet/hop.py.)

(the injectors in the order the scenario's `path` lists them). Everything the
taps, the peers and the timeline see goes into one trace; the verdicts are
computed from that trace alone once the peers are stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks.config import check_config
from harness.checks.registry import run_checks
from harness.checks.verdict import Status, Verdict
from harness.cpu_wait import CpuWaitSampler
from harness.report.rollup import SCENARIO_NOT_APPLICABLE as NOT_APPLICABLE
from harness.scenarios.conditions import SITUATION, describe, matches
from harness.scenarios.control import (
    PRIMARY_ROUTES,
    VIEWER_ROUTES,
    NotDelivered,
    PrimaryStatusPoller,
    deliver,
)
from harness.scenarios.external import Testee, TesteeFailed
from harness.scenarios.fault_path import FaultPath
from harness.scenarios.loader import Scenario, Step, ViewerSpec
from harness.scenarios.network import Network, socket_error
from harness.scenarios.network import not_applicable as needs_own_primary
from harness.scenarios.operator import ControlPlan, Operator, OperatorTimeout, not_applicable
from harness.scenarios.placeholders import environment, expand
from harness.scenarios.raw import run_raw_client
from harness.scenarios.telemetry_inlet import TelemetryInlet
from harness.trace import STOP_PEERS, Record, TraceWriter, load
from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.deviations import parse_deviations
from reference.protocol.errors import ProtocolError
from reference.protocol.requirements import BY_ID

log = logging.getLogger("harness.scenarios")
HOST = "127.0.0.1"
# The stream the reference Primary sends unless the scenario's `primary.stream` says otherwise.
DEFAULT_STREAM: dict[str, int] = {
    "width": 320,
    "height": 180,
    "fps": 30,
    "bitrate": 300_000,
    "gop": 60,
}


class ScenarioAbort(Exception):
    """A step could not be carried out; the reason is reported with the step's line."""


class SituationMissing(Exception):
    """A `situation` wait timed out with a testee in the scenario: the peers given never
    produced what the scenario exists for, which the spec allows; the scenario is
    NOT_APPLICABLE to them, with this reason, and what was judged up to then stands."""


# Actions whose handler writes its own `action` record (with what only it knows).
RECORDS_ITSELF = frozenset({"join"})


@dataclass
class ScenarioResult:
    name: str
    path: str
    covers: list[str]
    seed: int
    verdicts: list[Verdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    duration: float = 0.0
    trace_path: str | None = None
    pcap_path: str | None = None
    backends: dict[str, str | None] = field(default_factory=dict)
    fault_backends: dict[str, str] = field(default_factory=dict)  # e.g. packet: userspace
    timeline: list[dict[str, Any]] = field(default_factory=list)
    # External peers: role -> their command and the log files of their stdout/stderr.
    testees: dict[str, dict[str, str]] = field(default_factory=dict)
    # What the verdicts were computed with, so `harness check` can compute them again.
    check_config: dict[str, Any] = field(default_factory=dict)
    # Why the scenario could not apply to the peers given (it was not run), or None.
    not_applicable: str | None = None
    # Seconds the host kept the run's processes from a CPU (harness/cpu_wait.py): what
    # the timing rules left out; a high figure says the machine was starved.
    cpu_wait: float = 0.0

    @property
    def failures(self) -> list[str]:
        if self.not_applicable is not None:
            # Not run, or its situation never arose: what was judged up to then stands.
            return [f"{v.requirement} FAIL: {v.summary}" for v in self.verdicts
                    if v.status is Status.FAIL]
        out = list(self.problems)
        for v in self.verdicts:
            if v.status is Status.FAIL:
                out.append(f"{v.requirement} FAIL: {v.summary}")
            elif v.status is Status.NOT_OBSERVED and v.requirement in self.covers:
                out.append(f"{v.requirement} NOT_OBSERVED although covered: {v.summary}")
        return out

    @property
    def verdict(self) -> str:
        if self.not_applicable is not None:
            return "FAIL" if self.failures else NOT_APPLICABLE
        return "FAIL" if self.failures else "PASS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "covers": self.covers,
            "seed": self.seed,
            "verdict": self.verdict,
            "duration": round(self.duration, 3),
            "cpu_wait": round(self.cpu_wait, 3),
            "problems": self.problems,
            "failures": self.failures,
            "trace": self.trace_path,
            "pcap": self.pcap_path,
            "backends": self.backends,
            "fault_backends": self.fault_backends,
            "timeline": self.timeline,
            "testees": self.testees,
            "checks": self.check_config,
            "not_applicable": self.not_applicable,
            "requirements": [
                {**v.as_dict(), "rule": BY_ID[v.requirement].rule if v.requirement in BY_ID else ""}
                for v in self.verdicts
            ],
        }


class TraceWaiter:
    """Lets asyncio code wait on trace conditions as records arrive."""

    def __init__(self, trace: TraceWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.trace = trace
        self.loop = loop
        self.changed = asyncio.Event()
        trace.subscribe(self._on_record)

    def _on_record(self, record: Record) -> None:
        self.loop.call_soon_threadsafe(self.changed.set)

    async def wait(self, condition: dict[str, Any], since: float, within: float) -> bool:
        deadline = self.loop.time() + within
        wanted = int(condition.get("count", 1))
        found, seen = 0, 0
        while True:
            # Only the records written since the last look: the trace grows with every frame.
            fresh = self.trace.records_from(seen)
            seen += len(fresh)
            found += sum(1 for r in fresh if r["t"] >= since and matches(condition, r))
            if found >= wanted:
                return True
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                return False
            self.changed.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation that
            # arrives as the event is set, and a dead testee cancels waits that way.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.changed.wait()

    def close(self) -> None:
        self.trace.unsubscribe(self._on_record)


class ViewerHandle:
    """A running Viewer: the reference one in this process, or an external command."""

    def __init__(self, spec: ViewerSpec, run: ScenarioRun, port: int) -> None:
        self.spec, self.run, self.port = spec, run, port
        self.viewer: ReferenceViewer | None = None
        self.task: asyncio.Task[None] | None = None
        self.testee: Testee | None = None
        self.tail: asyncio.Task[None] | None = None
        self.inlet: TelemetryInlet | None = None

    async def start(self) -> None:
        spec, run = self.spec, self.run
        secret = spec.secret if spec.secret is not None else run.scenario.secret
        if spec.kind == "external":
            await self._start_external(secret)
            return

        def sink(record: Record) -> None:
            run.trace.write({**record, "kind": "telemetry"})

        self.viewer = ReferenceViewer(
            ViewerConfig(
                host=HOST,
                port=self.port,
                secret=secret,
                version=spec.version,
                timings=run.scenario.timings,
                decode=spec.decode,
                codec_backend=spec.codec_backend,
                viewer_id=spec.id,
                seed=run.seed + sum(map(ord, spec.id)),
                deviations=parse_deviations(spec.deviations),
            ),
            sink=sink,
        )
        run.trace.emit("action", action="join", viewer=spec.id)
        self.task = asyncio.create_task(self.viewer.run(), name=f"viewer {spec.id}")

    async def _start_external(self, secret: str) -> None:
        telemetry = self.run.directory / f"telemetry-{self.spec.id}.jsonl"
        telemetry.touch()
        network = self.run.network
        self.inlet = TelemetryInlet(
            self.spec.id,
            self.run.trace,
            network.listen_host,
            self.run.fixed_telemetry_port(),
            advertise=network.advertised,
        )
        try:
            await self.inlet.start()
        except OSError as exc:
            raise ScenarioAbort(
                f"viewer {self.spec.id}: cannot listen for telemetry on "
                f"{network.listen_host}:{self.inlet.requested_port}: {socket_error(exc)}"
            ) from None
        network.say(
            f"[{self.run.scenario.name}] telemetry to {self.inlet.tcp_url} or {self.inlet.http_url}"
        )
        if not self.spec.command:
            # A device started by hand: it is pointed at the tap, nothing is run here.
            self.run.trace.emit("action", action="join", viewer=self.spec.id, command=None)
            return
        values = {
            **self.run.common_placeholders(),
            "host": network.advertised,
            "port": self.port,
            "secret": secret,
            "version": self.spec.version,
            "telemetry": telemetry,
            "telemetry_url": self.inlet.tcp_url,
            "telemetry_http_url": self.inlet.http_url,
            "viewer_id": self.spec.id,
            **_control_placeholders(self.spec.control),
        }
        command = expand(self.spec.command, values)
        self.testee = await self.run.start_testee(
            f"viewer {self.spec.id}", command, environment(values)
        )
        self.run.trace.emit("action", action="join", viewer=self.spec.id, command=command)
        self.tail = asyncio.create_task(self._tail(telemetry))

    async def _tail(self, path: Path) -> None:
        """Copy an external Viewer's telemetry file into the trace as it grows."""
        from reference.protocol.telemetry import TelemetryError, parse_line

        offset, number = 0, 0
        while True:
            with path.open(encoding="utf-8") as handle:
                handle.seek(offset)
                for line in handle:
                    if not line.endswith("\n"):
                        break
                    offset += len(line.encode("utf-8"))
                    number += 1
                    try:
                        record = parse_line(line, where=f"{path}:{number}")
                    except TelemetryError as exc:
                        self.run.trace.emit("note", text=str(exc))
                        continue
                    record.setdefault("viewer", self.spec.id)
                    self.run.trace.write({**record, "kind": "telemetry"})
            await asyncio.sleep(0.05)  # polling a file a third party writes

    @property
    def decoder_backend(self) -> str | None:
        return self.viewer.decoder_backend if self.viewer else None

    async def act(self, do: str) -> None:
        """background, foreground (PROTOCOL.md 7.12) or kill_connection; NotDelivered if not.

        A reference Viewer is told directly; an external one through its test-control
        interface, or by the operator (the runner decides before it gets here).
        """
        if self.viewer is not None:
            if do == "kill_connection":
                if not self.viewer.kill_connection():
                    raise NotDelivered(f"viewer {self.spec.id} has no connection to kill")
            else:
                self.viewer.set_background(do == "background")
            return
        if not self.spec.control:
            raise NotDelivered(f"viewer {self.spec.id} has no test-control interface")
        await deliver(self.spec.control, VIEWER_ROUTES[do], {})

    async def stop(self, *, abrupt: bool = False) -> None:
        if self.viewer is not None and self.task is not None:
            if abrupt:
                self.task.cancel()
            else:
                self.viewer.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.task, 5)
        if self.testee is not None:
            await self.testee.stop()
        if self.tail is not None:
            await asyncio.sleep(0.1)  # one more poll of the telemetry file
            self.tail.cancel()
        if self.inlet is not None:
            await self.inlet.stop()


# Computes a run's verdicts from its trace; a certification judges only the testee this way.
Judge = Callable[[list[Record], Scenario], list[Verdict]]


def expected_verdicts(records: list[Record], scenario: Scenario) -> list[Verdict]:
    """A suite run's verdicts: the rules the scenario lists under `expect`, on the whole trace."""
    return run_checks(records, scenario.expect, scenario.timings)


class ScenarioRun:
    def __init__(
        self,
        scenario: Scenario,
        directory: Path,
        seed: int,
        judge: Judge = expected_verdicts,
        *,
        control: ControlPlan | None = None,
        network: Network | None = None,
    ) -> None:
        self.scenario = scenario
        self.judge = judge
        self.control = control or ControlPlan()
        self.network = network or Network()
        self.primary_host = HOST
        # network.listen_port and .telemetry_port go to the first testee Viewer only.
        self.fixed_port_taken = False
        self.fixed_telemetry_port_taken = False
        self.operator: Operator | None = None
        self.status_poller: PrimaryStatusPoller | None = None
        # Epoch changes delivered but still settling (reference Primary): awaited at the end.
        self.settling: list[asyncio.Task[int]] = []
        self.directory = directory
        self.seed = scenario.seed if scenario.seed is not None else seed
        directory.mkdir(parents=True, exist_ok=True)
        self.trace = TraceWriter(directory / "trace.jsonl")
        # The host's CPU queueing, which timing rules do not count against the peers.
        self.cpu_wait = CpuWaitSampler(self.trace.write)
        self.started = 0.0
        self.primary: ReferencePrimary | None = None
        self.primary_testee: Testee | None = None
        self.testees: dict[str, Testee] = {}
        self.testee_watches: list[asyncio.Task[None]] = []
        # Set, with the report, by the first testee that fails to start or ends unasked.
        self.testee_exit: asyncio.Future[str] | None = None
        self.joins: asyncio.Task[None] | None = None
        self.primary_port = 0
        self.primary_tap_port = 0
        self.started_trace = 0.0
        self.last_action = 0.0
        self.viewers: dict[str, ViewerHandle] = {}
        self.cleanups: list[Any] = []
        self.entry_port = 0
        self.toxiproxy: Any = None
        self.frame_proxy: Any = None
        self.packet_hop: Any = None
        self.fault_path: FaultPath | None = None
        self.faults: dict[str, Any] = {}
        self.pcap: Any = None
        self.timeline_log: list[dict[str, Any]] = []

    # --- set-up ---------------------------------------------------------------

    async def _start_primary(self, port: int = 0) -> None:
        spec = self.scenario.primary
        if spec.kind == "external":
            host = HOST
            if self.network.primary_address is not None:
                host, port = self.network.primary_address  # on a device, maybe running
            elif port == 0:
                port = _free_port()
            command = None
            values: dict[str, object] = {
                **self.common_placeholders(),
                "host": host,
                "port": port,
                "version": spec.version,
                **DEFAULT_STREAM,
                **spec.stream,
                **_control_placeholders(spec.control),
            }
            if spec.command:
                command = expand(spec.command, values)
                self.primary_testee = await self.start_testee(
                    "primary", command, environment(values)
                )
            self.primary_host, self.primary_port = host, port
            await _wait_listening(host, port, 15)
            self.trace.emit("action", action="primary_started", command=command)
            if spec.control:
                self.status_poller = PrimaryStatusPoller(spec.control, self.trace)
                self.status_poller.start()
                try:
                    await self.status_poller.first_answer()
                except NotDelivered as exc:
                    raise ScenarioAbort(str(exc)) from None
            return
        stream = StreamConfig(**{**DEFAULT_STREAM, **spec.stream})
        self.primary = ReferencePrimary(
            PrimaryConfig(
                secret=self.scenario.secret,
                host=HOST,
                port=port,
                stream=stream,
                codec_backend=spec.codec_backend,
                version=spec.version,
                timings=self.scenario.timings,
                autostart=spec.autostart,
                deviations=parse_deviations(spec.deviations),
                seed=self.seed,
            ),
            trace=self.trace,
        )
        await self.primary.start()
        self.primary_port = self.primary.port

    def fixed_telemetry_port(self) -> int:
        """network.telemetry_port for the first testee Viewer's inlet, 0 (any) after."""
        if self.fixed_telemetry_port_taken:
            return 0
        self.fixed_telemetry_port_taken = True
        return self.network.telemetry_port

    async def _stop_primary(self) -> None:
        if self.status_poller is not None:
            await self.status_poller.stop()
            self.status_poller = None
        if self.primary is not None:
            await self.primary.close()
            self.primary = None
        if self.primary_testee is not None:
            await self.primary_testee.stop()
            self.primary_testee = None

    def common_placeholders(self) -> dict[str, object]:
        """The placeholder values every external peer gets (harness/scenarios/placeholders.py)."""
        return {
            "host": HOST,
            "secret": self.scenario.secret,
            "timing_scale": self.scenario.timing_scale,
            "run_dir": self.directory,
            "scenario": self.scenario.name,
        }

    async def start_testee(
        self, role: str, command: str, env: dict[str, str] | None = None
    ) -> Testee:
        """Start an external peer, and watch it: if it ends unasked, the scenario stops."""
        testee = Testee(role, command, self.directory, env)
        self.testees[role] = testee
        try:
            await testee.start()
        except TesteeFailed as exc:
            # Raised here too, but a Viewer joins from a task the timeline does not await.
            self._testee_failed(str(exc))
            raise
        if testee.process is not None:
            self.cpu_wait.watch(testee.process.pid)
        self.testee_watches.append(asyncio.create_task(self._watch(testee)))
        return testee

    async def _watch(self, testee: Testee) -> None:
        self._testee_failed(await testee.ended_unasked())

    def _testee_failed(self, report: str) -> None:
        self.trace.emit("note", text=report)
        if self.testee_exit is not None and not self.testee_exit.done():
            self.testee_exit.set_result(report)

    async def _build_path(self) -> None:
        """Taps and injectors from the Primary outwards (harness/scenarios/fault_path.py)."""
        from harness.wire.pcap import PcapWriter

        self.pcap = PcapWriter(str(self.directory / "wire.pcapng"))
        path = self.fault_path = FaultPath(
            HOST,
            trace=self.trace,
            seed=self.seed,
            name=self.scenario.name,
            pcap=self.pcap,
            packet_capture=str(self.directory / "packet.pcap"),
        )
        self.cleanups.append(path.close)  # first: a hop that fails to start stops the rest
        try:
            await path.build(self.primary_port, self.scenario.fault_path, self.primary_host)
        finally:
            self.primary_tap_port, self.entry_port = path.primary_tap_port, path.entry_port
            self.toxiproxy, self.frame_proxy = path.toxiproxy, path.frame_proxy
            self.packet_hop = path.packet_hop

    async def _start_viewer(self, spec: ViewerSpec) -> None:
        assert self.fault_path is not None, "the path is built before any Viewer joins"
        listen_host, listen_port = HOST, 0
        if spec.kind == "external":  # the testee: on the address it can reach
            listen_host = self.network.listen_host
            if not self.fixed_port_taken:
                listen_port, self.fixed_port_taken = self.network.listen_port, True
        tap = await self.open_viewer_tap(
            spec.id, listen_host, listen_port, announce="the Viewer" if spec.kind == "external"
            else None)
        self.cleanups.append(tap.stop)
        handle = ViewerHandle(spec, self, tap.port)
        self.viewers[spec.id] = handle
        await handle.start()

    async def open_viewer_tap(
        self, viewer: str, host: str, port: int, *, announce: str | None = None
    ) -> Any:
        """A started tap for `viewer` on host:port (ScenarioAbort, one line, when it cannot
        listen there); with `announce` ("the Viewer"), where to point it is printed."""
        assert self.fault_path is not None, "the path is built before any Viewer joins"
        try:
            tap = await self.fault_path.viewer_tap(viewer, host, port)
        except OSError as exc:
            raise ScenarioAbort(
                f"viewer {viewer}: cannot listen on {host}:{port}: {socket_error(exc)}"
            ) from None
        if announce is not None:
            self.network.say(
                f"[{self.scenario.name}] point {announce} at {self.network.advertised}:{tap.port}"
            )
        return tap

    # --- the timeline ---------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def _step(self, step: Step, waiter: TraceWaiter) -> None:
        if step.at is not None and step.at > self.elapsed():
            await asyncio.sleep(step.at - self.elapsed())  # the scenario's own clock
        began = self.trace.now()
        entry: dict[str, Any] = {
            "t": round(self.elapsed(), 3),
            "step": step.describe(),
            "line": step.line,
        }
        self.timeline_log.append(entry)
        if step.hold is not None:
            await asyncio.sleep(step.hold)  # observing the system for a scripted duration
            return
        if step.wait is not None:
            # By default a wait looks for the consequences of the latest action, which may
            # already have happened while that action was being carried out.
            since = self.started_trace if step.wait.get("since") == "start" else self.last_action
            ok = await waiter.wait(step.wait, since, step.within)
            entry["waited"] = round(self.elapsed() - entry["t"], 3)
            if not ok:
                waited = (
                    f"line {step.line}: waited {step.within:g} s for "
                    f"{describe(step.wait)}, it never happened"
                )
                situation = step.wait.get(SITUATION)
                if situation is None:
                    raise ScenarioAbort(waited)
                missing = f"the situation did not arise: {situation}; {waited}"
                if self._has_testee():
                    raise SituationMissing(missing)
                # Reference peers only: they are built to produce it, so its absence is
                # a regression of the harness or of a reference peer, reported loudly.
                raise ScenarioAbort(f"{missing} (with reference peers only)")
            return
        self.last_action = began
        assert step.do is not None
        record: dict[str, Any] = {"t": began, "kind": "action", "action": step.do, **step.args}
        try:
            if self.operator is not None and self.operator.handles(step):
                # Carried out by a person; delivered when the wire shows it happened.
                record["t"] = await self.operator.perform(step)
                record["operator"] = True
            else:
                await self._do(step)
        except NotDelivered as exc:
            raise ScenarioAbort(f"line {step.line}: {step.do} was not delivered: {exc}") from None
        except OperatorTimeout as exc:
            raise ScenarioAbort(f"line {step.line}: {exc}") from None
        # Written once delivered, stamped with when it was asked for: the checkers read
        # what followed the request (harness/checks/order.py merges it in time order).
        if step.do not in RECORDS_ITSELF:
            self.trace.write(record)
        if self.status_poller is not None:
            self.status_poller.poke()

    async def _do(self, step: Step) -> None:
        args, do = dict(step.args), step.do
        if do in (
            "reconfigure",
            "restart_encoder",
            "pause",
            "resume",
            "stop_stream",
            "start_stream",
            "legacy",
        ):
            await self._primary_action(do, args)
        elif do == "restart_primary":
            port = self.primary_port
            await self._stop_primary()
            if args.get("down_for"):
                await asyncio.sleep(float(args["down_for"]))  # the outage being simulated
            await self._start_primary(port)
        elif do == "kill_primary":
            await self._stop_primary()
        elif do == "join":
            spec = next(v for v in self.scenario.viewers if v.id == args["viewer"])
            await self._start_viewer(spec)
        elif do == "kill_viewer":
            await self.viewers[args["viewer"]].stop(abrupt=True)
        elif do in VIEWER_ROUTES:
            await self.viewers[args["viewer"]].act(do)
        elif do == "toxic":
            attrs = {
                "type": args["type"],
                "stream": args.get("stream", "downstream"),
                "toxicity": args.get("toxicity", 1.0),
                "attributes": args.get("attributes", {}),
            }
            if "name" in args:
                attrs["name"] = args["name"]
            await asyncio.to_thread(lambda: self.toxiproxy.add_toxic(**attrs))
            self.trace.emit("fault", source="toxiproxy", fault=args["type"], **attrs)
        elif do == "remove_toxic":
            await asyncio.to_thread(self.toxiproxy.destroy_toxic, args["name"])
            self.trace.emit("fault", source="toxiproxy", fault="removed", name=args["name"])
        elif do in ("disable_proxy", "enable_proxy"):
            method = self.toxiproxy.disable if do == "disable_proxy" else self.toxiproxy.enable
            await asyncio.to_thread(method)
            self.trace.emit("fault", source="toxiproxy", fault=do)
        elif do == "fault":
            from harness.chaos import make_fault

            fault_spec = dict(args)
            label = str(fault_spec.pop("id", fault_spec.get("type")))
            fault_spec.setdefault("seed", self.seed)
            self.faults[label] = self.frame_proxy.add_fault(make_fault(fault_spec))
        elif do == "remove_fault":
            self.frame_proxy.remove_fault(self.faults.pop(str(args["id"])))
        elif do in ("impair", "clear_impairment"):
            from harness.packet.impairment import Impairment, directions, parse_step

            if do == "impair":
                chosen, impairment = parse_step(args)
            else:
                chosen, impairment = directions(args), Impairment()
            await asyncio.to_thread(self.packet_hop.impair, chosen, impairment)
        elif do == "raw":
            outcome = await run_raw_client(
                HOST,
                self.primary_tap_port,
                list(args.get("send", [])),
                secret=self.scenario.secret,
                trace=load(self.trace.snapshot()),
                linger=float(args.get("linger", 1.0)),
            )
            self.trace.emit("note", text=f"raw client: {outcome}")
        elif do == "note":
            self.trace.emit("note", text=str(args.get("text", "")))
        else:
            raise ScenarioAbort(f"line {step.line}: unknown action {do!r}")

    async def _primary_action(self, do: str, args: dict[str, Any]) -> None:
        """Deliver a stream action; NotDelivered with the reason if it cannot be."""
        primary = self.primary
        if primary is None:
            url = self.scenario.primary.control
            if not url:
                raise NotDelivered("the external Primary has no test-control interface")
            await deliver(url, PRIMARY_ROUTES[do], args)
            return
        try:
            await self._reference_primary_action(primary, do, args)
        except (ProtocolError, ValueError, RuntimeError, TypeError) as exc:
            raise NotDelivered(f"the reference Primary refused it: {exc}") from None

    async def _reference_primary_action(
        self, primary: ReferencePrimary, do: str, args: dict[str, Any]
    ) -> None:
        # An epoch change is delivered once its epoch has begun, like the control API's
        # answer; the timeline goes on while it settles.
        if do == "reconfigure":
            _, task = await primary.begin_epoch_change(primary.reconfigure(**args))
            self.settling.append(task)
        elif do == "restart_encoder":
            settle = float(args.get("settle", 0.0))
            _, task = await primary.begin_epoch_change(primary.restart_encoder(settle=settle))
            self.settling.append(task)
        elif do == "pause":
            await primary.pause()
        elif do == "resume":
            await primary.resume()
        elif do == "stop_stream":
            await primary.stop_stream()
        elif do == "start_stream":
            await primary.start_stream()
        elif do == "legacy":
            primary.set_legacy(bool(args.get("enabled", True)))

    async def _joins(self) -> None:
        """Start every Viewer with a numeric join time at that time."""
        for spec in sorted(
            (v for v in self.scenario.viewers if v.join != "manual"), key=lambda v: float(v.join)
        ):
            delay = float(spec.join) - self.elapsed()
            if delay > 0:
                await asyncio.sleep(delay)  # the scenario's join time
            try:
                await self._start_viewer(spec)
            except ScenarioAbort as exc:
                self._testee_failed(str(exc))  # stops the timeline now, not at its next wait
                raise

    # --- the whole run --------------------------------------------------------

    async def execute(self) -> ScenarioResult:
        scenario = self.scenario
        result = ScenarioResult(scenario.name, str(scenario.path), scenario.covers, self.seed)
        self.trace.emit("note", text=f"scenario {scenario.name} seed {self.seed}")
        self.started = time.monotonic()
        self.started_trace = self.last_action = self.trace.now()
        waiter = TraceWaiter(self.trace, asyncio.get_running_loop())
        self.testee_exit = asyncio.get_running_loop().create_future()
        result.not_applicable = not_applicable(scenario, self.control) or needs_own_primary(
            scenario, self.network
        )
        if result.not_applicable is not None:
            self.trace.emit("note", text=f"not applicable: {result.not_applicable}")
            waiter.close()
            self.trace.close()
            result.trace_path = str(self.directory / "trace.jsonl")
            (self.directory / "result.json").write_text(json.dumps(result.as_dict(), indent=2))
            return result
        if self.control.operator:
            self.operator = Operator(self.control, self.trace, scenario)
        self.cpu_wait.watch_loop(asyncio.get_running_loop())
        self.cpu_wait.start()
        try:
            async with asyncio.timeout(scenario.timeout):
                await self._play_watched(waiter)
        except SituationMissing as exc:
            result.not_applicable = str(exc)
            self.trace.emit("note", text=f"not applicable: {exc}")
        except (ScenarioAbort, TesteeFailed) as exc:
            result.problems.append(str(exc))
        except TimeoutError:
            result.problems.append(f"scenario exceeded its timeout of {scenario.timeout:g} s")
        except Exception as exc:  # reported with the scenario, the suite goes on
            result.problems.append(f"harness error: {exc!r}")
            log.error("scenario %s crashed:\n%s", scenario.name, traceback.format_exc())
        finally:
            waiter.close()
            if self.joins is not None and not self.joins.done():
                self.joins.cancel()
            elif self.joins is not None and not self.joins.cancelled():
                self.joins.exception()  # retrieved: already reported as the scenario's problem
            result.backends = self._backends()
            if self.packet_hop is not None:
                result.fault_backends["packet"] = self.packet_hop.backend.name
            await self._teardown()
            result.testees = {role: t.logs.as_dict() for role, t in self.testees.items()}
        result.duration = time.monotonic() - self.started
        result.cpu_wait = self.cpu_wait.total
        result.trace_path = str(self.directory / "trace.jsonl")
        result.pcap_path = str(self.directory / "wire.pcapng")
        result.timeline = self.timeline_log
        # The records in the order they were written, as `harness check` reads the file.
        result.verdicts = self.judge(self.trace.snapshot(), scenario)
        result.check_config = check_config(scenario.expect, scenario.timings)
        (self.directory / "result.json").write_text(json.dumps(result.as_dict(), indent=2))
        return result

    async def _play(self, waiter: TraceWaiter) -> None:
        await self._start_primary()
        await self._build_path()
        self.joins = asyncio.create_task(self._joins())
        for step in self.scenario.timeline:
            await self._step(step, waiter)
        await self.joins
        for task in self.settling:
            await task  # an epoch change that failed after it began is the scenario's problem

    async def _play_watched(self, waiter: TraceWaiter) -> None:
        """Play the scenario, but stop at once when a testee ends without being asked."""
        assert self.testee_exit is not None
        body = asyncio.create_task(self._play(waiter))
        try:
            either: set[asyncio.Future[Any]] = {body, self.testee_exit}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not body.done():
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await body
        if self.testee_exit.done():
            # Whatever the body made of it (a wait that never happened), the exit is the cause.
            if not body.cancelled():
                body.exception()  # retrieved: the exit report below replaces it
            raise TesteeFailed(self.testee_exit.result())
        body.result()

    def _has_testee(self) -> bool:
        """An external peer (the one under test) plays in this scenario."""
        scenario = self.scenario
        return scenario.primary.kind == "external" or any(
            v.kind == "external" for v in scenario.viewers
        )

    def _backends(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {"primary": self.primary.backend if self.primary else None}
        for vid, handle in self.viewers.items():
            out[vid] = handle.decoder_backend
        return out

    async def _teardown(self) -> None:
        self.trace.emit("action", action=STOP_PEERS)  # HB-1: no heartbeat is owed after it
        for task in self.settling:
            task.cancel()
        for handle in self.viewers.values():
            with contextlib.suppress(Exception):
                await handle.stop()
        with contextlib.suppress(Exception):
            await self._stop_primary()
        for watch in self.testee_watches:
            watch.cancel()
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                outcome = cleanup()
                if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
                    await outcome
        if self.pcap is not None:
            with contextlib.suppress(Exception):
                self.pcap.close()
        self.cpu_wait.stop()
        self.trace.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_listening(
    host: str, port: int, within: float, what: str = "external Primary"
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise ScenarioAbort(f"{what} never listened on {host}:{port}") from None
            await asyncio.sleep(0.05)  # polling a process we do not control


def _control_placeholders(url: str | None) -> dict[str, object]:
    """{control} (HOST:PORT) and {control_port} of a test-control interface's base URL."""
    if not url:
        return {}
    address = url.split("://", 1)[-1].split("/", 1)[0]
    return {"control": address, "control_port": address.rsplit(":", 1)[-1]}


def run_scenario(
    scenario: Scenario,
    directory: Path,
    seed: int,
    judge: Judge = expected_verdicts,
    *,
    control: ControlPlan | None = None,
    network: Network | None = None,
) -> ScenarioResult:
    run = ScenarioRun(scenario, directory, seed, judge, control=control, network=network)
    return asyncio.run(run.execute())
