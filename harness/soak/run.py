"""One soak: the reference Primary, the Viewer population and the nemesis, judged online.

The data path is a scenario's, built by the same code (harness/scenarios/fault_path.py;
the Primary's set-up and the actions are harness/scenarios/runner.py's):

    Viewers (child process) -> tap viewer_side:<id> -> [toxiproxy] -> [frame_proxy]
                            -> tap primary_side -> Primary

but no record is kept in memory: each one, as it is written, goes to the current
trace segment and to one verdict engine. Every window the engine's per-monitor
verdicts are taken, the segment is rotated (and later dropped unless a FAIL is
near), and each FAIL gets a reproduction scenario. At the end the engine gives
the overall verdicts and the sampled figures are judged against the drift limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.certify.judge import rule_params
from harness.checks.engine import Engine
from harness.checks.verdict import Status, Verdict
from harness.cpu_wait import CpuWaitSampler
from harness.scenarios.external import TesteeFailed
from harness.scenarios.fault_path import FaultPath
from harness.scenarios.loader import PrimarySpec, Scenario, ViewerSpec
from harness.scenarios.loader import Step as ScenarioStep
from harness.scenarios.network import Network
from harness.scenarios.runner import HOST, ScenarioAbort, ScenarioRun, ViewerHandle
from harness.soak.allocator import Trimmer
from harness.soak.drift import DriftResult, judge_all
from harness.soak.nemesis import KINDS, Schedule, Step, draw_schedule, incarnation
from harness.soak.population import Population, PopulationConfig
from harness.soak.profile import Limit, Profile
from harness.soak.sampler import Sampler
from harness.soak.segments import SegmentStore
from harness.soak.testees import (
    TESTEE_PRIMARY_PROCESS,
    TESTEE_VIEWER_PROCESS,
    SoakTestees,
    Split,
    left_out,
)
from harness.trace import Record, TraceWriter

log = logging.getLogger("harness.soak")
SECRET = "lvs-secret"
LAG_PROBE_S = 0.05


@dataclass
class WindowSummary:
    index: int
    start: float  # seconds since the start of the soak
    end: float
    records: int
    counts: dict[str, int]
    fails: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    # With a testee: the reference peers' FAILs (harness faults) and the testee's FAILs
    # they made INCONCLUSIVE.
    harness_faults: list[dict[str, Any]] = field(default_factory=list)
    inconclusive: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "records": self.records,
            "counts": self.counts,
            "fails": self.fails,
            "faults": self.faults,
            "harness_faults": self.harness_faults,
            "inconclusive": self.inconclusive,
        }


@dataclass
class SoakResult:
    profile: Profile
    seed: int
    directory: Path
    schedule: Schedule
    verdicts: list[Verdict] = field(default_factory=list)
    drift: list[DriftResult] = field(default_factory=list)
    harness_drift: list[DriftResult] = field(default_factory=list)  # beside a testee
    windows: list[WindowSummary] = field(default_factory=list)
    fails: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    executed: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    records: int = 0
    late_records: int = 0
    checker_cpu_s: float = 0.0
    disk: dict[str, Any] = field(default_factory=dict)
    # With an external peer (docs/soak.md, "External peers"): who is the testee, the
    # reference peers' own verdicts (the harness's health) and their FAILs.
    testees: dict[str, Any] = field(default_factory=dict)
    harness_verdicts: list[Verdict] = field(default_factory=list)
    harness_faults: list[dict[str, Any]] = field(default_factory=list)
    inconclusive: list[dict[str, Any]] = field(default_factory=list)
    # What a FAIL's reproduction scenario needs of them (harness/soak/shrink.py).
    reproduce_testees: dict[str, Any] = field(default_factory=dict)
    allocator: dict[str, Any] = field(default_factory=dict)  # malloc_trim: how often, cost

    @property
    def failed_requirements(self) -> list[str]:
        return [v.requirement for v in self.verdicts if v.status is Status.FAIL]

    @property
    def verdict(self) -> str:
        """PASS, FAIL, or INCONCLUSIVE: no FAIL of the testee, but the reference peers
        FAILed (a harness fault), so what the testee did in those windows is undecided."""
        if self.passed:
            return "PASS"
        if (
            (self.harness_faults or self.inconclusive)
            and not self.problems
            and not self.failed_requirements
            and not self.failed_limits
        ):
            return "INCONCLUSIVE"
        return "FAIL"

    @property
    def failed_limits(self) -> list[str]:
        return [d.limit.name for d in self.drift if d.status is Status.FAIL]

    @property
    def passed(self) -> bool:
        judged_something = any(v.status is Status.PASS for v in self.verdicts)
        return (
            judged_something
            and not self.problems
            and not self.harness_faults
            and not self.inconclusive
            and not self.failed_requirements
            and not self.failed_limits
        )


class SoakRun(ScenarioRun):
    def __init__(
        self,
        profile: Profile,
        directory: Path,
        seed: int,
        *,
        keep_all: bool = False,
        dashboard: Any = None,
        fleet_workers: int | None = None,
        fleet_bind: str | None = None,
        fleet_master_port: int | None = None,
        fleet_remote_workers: int = 0,
        testees: SoakTestees | None = None,
        network: Network | None = None,
    ) -> None:
        self.trimmer = Trimmer()
        self.trimmer.tune_allocator()  # before any worker thread allocates
        testees = testees or SoakTestees()
        self.testee_options = testees
        primary = PrimarySpec(stream=dict(profile.stream), deviations=profile.primary_deviations)
        if testees.primary_external:
            primary = PrimarySpec(
                kind="external",
                stream=dict(profile.stream),
                command=testees.primary_command,
                control=testees.primary_control_url(),
            )
        scenario = Scenario(
            name="soak",
            path=Path(f"soak:{profile.name}"),
            covers=[],
            expect={},
            timeout=profile.duration + 600,
            seed=seed,
            secret=SECRET,
            primary=primary,
            fault_path=list(profile.path),
        )
        super().__init__(scenario, directory, seed, network=network)
        # The scenario runner's trace keeps every record and writes one file: replace it.
        self.trace.close()
        (directory / "trace.jsonl").unlink(missing_ok=True)
        self.trace = TraceWriter(None, keep=False)
        self.cpu_wait = CpuWaitSampler(self.trace.write)
        self.profile = profile
        self.window_s = profile.scaled_window()
        self.fleet_workers = fleet_workers
        # With workers on other hosts: where the master and the fault path's entry listen.
        self.fleet_bind, self.fleet_master_port = fleet_bind, fleet_master_port
        self.fleet_remote_workers = fleet_remote_workers
        # A Locust fleet's users are Locust's to start and stop: no Viewer steps for them.
        undeliverable = left_out((f.kind for f in profile.faults), primary.control,
                                 primary.kind == "external", testees.primary_by_hand)
        faults = [(f.kind, f.weight, f.duration) for f in profile.faults
                  if (fleet_workers is None or KINDS[f.kind][1] == 0)
                  and f.kind not in undeliverable]
        self.schedule = draw_schedule(
            seed=seed,
            duration=profile.duration,
            viewers=profile.viewers,
            decoding=profile.decoding if fleet_workers is None else 0,
            late_joiners=profile.late_joiners if fleet_workers is None else 0.0,
            every=profile.every,
            start_after=profile.start_after,
            faults=faults,
            path=profile.path,
            external=testees.viewer_ids() if fleet_workers is None else (),
        )
        self.schedule.left_out = undeliverable
        if fleet_workers is not None:
            self.schedule.initial = []
        self.fleet: Any = None
        self.result = SoakResult(profile, seed, directory, self.schedule)
        self.external_ids = testees.viewer_ids()
        if testees.primary_external:
            self.result.reproduce_testees["primary_command"] = testees.primary_command
            self.result.reproduce_testees["primary_control"] = primary.control
        if self.network.announce:  # a device: its reproduction needs the same addresses
            self.result.reproduce_testees["network"] = self.network.as_options()
        if self.external_ids:
            self.result.reproduce_testees["external_viewers"] = dict.fromkeys(
                self.external_ids, testees.viewer_command)
        self.split: Split | None = None
        self.harness_engine: Engine | None = None
        if testees.any:
            # Certification's judging (harness/certify/judge.py): the testee's rules on its
            # records, the other side's on the reference peers' (the harness's health).
            self.split = Split(testees.primary_external, frozenset(self.external_ids),
                               primary_process=testees.primary_by_hand is None)
            self.engine = Engine(rule_params(scenario, self.split.testee_rules()))
            self.harness_engine = Engine(rule_params(scenario, self.split.harness_rules()))
        else:
            self.engine = Engine()
        self.segments = SegmentStore(
            directory / "segments",
            keep_before=profile.keep_before,
            keep_after=profile.keep_after,
            keep_all=keep_all,
        )
        self.sampler = Sampler({"harness": os.getpid()}, time.monotonic())
        self.population = Population(
            PopulationConfig(
                secret=SECRET,
                seed=seed,
                stats_interval=profile.sample_interval,
                deviations=tuple(profile.viewer_deviations),
            ),
            records=self.trace.write,
            figures=self.sampler.viewer_figures,
        )
        self.dashboard = dashboard
        self.taps: dict[str, Any] = {}  # live Viewer name -> its tap
        self.incarnations: dict[str, int] = {}  # schedule's Viewer id -> joins so far
        self.active: dict[str, Step] = {}
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._window_records = 0
        self.trace.subscribe(self._on_record)

    # --- the record path ------------------------------------------------------

    def _on_record(self, record: Record) -> None:
        with self._lock:
            self.segments.write(record)
            began = time.thread_time()
            if self.split is None:
                self.engine.feed(record)
            else:
                owner = self.split.owner(record)
                if owner is not False:
                    self.engine.feed(record)
                if owner is not True:
                    assert self.harness_engine is not None
                    self.harness_engine.feed(record)
            self.result.checker_cpu_s += time.thread_time() - began
            self.sampler.observe(record)
            self._window_records += 1

    def relative(self, t: float) -> float:
        return t - self.started_trace

    # --- set-up (the scenario runner's, without the capture file) ---------------

    async def _build_path(self) -> None:
        # The scenario runner's path (harness/scenarios/fault_path.py) without a capture:
        # a night's pcapng would grow without bound; the trace segments hold the headers.
        path = self.fault_path = FaultPath(
            HOST, trace=self.trace, seed=self.seed, name=self.scenario.name
        )
        self.cleanups.append(path.close)
        await path.build(self.primary_port, self.scenario.fault_path, self.primary_host,
                         entry_host=self.fleet_bind if self.fleet_workers is not None else None)
        self.primary_tap_port, self.entry_port = path.primary_tap_port, path.entry_port
        self.toxiproxy, self.frame_proxy = path.toxiproxy, path.frame_proxy
        self.packet_hop = path.packet_hop

    async def _start_primary(self, port: int = 0) -> None:
        await super()._start_primary(port)
        if self.primary_testee is not None and self.primary_testee.process is not None:
            # again when restarted: the same series goes on with the new process
            self.sampler.watch(TESTEE_PRIMARY_PROCESS, self.primary_testee.process.pid)

    async def _join_external(self, vid: str, name: str) -> None:
        """Start one incarnation of an external Viewer (its command, with `name` as its
        {viewer_id}) on a tap of its own; its telemetry is tailed into the trace."""
        options = self.testee_options
        assert options.viewer_command is not None
        port = await self._tap_for(name, external=True)
        spec = ViewerSpec(id=name, kind="external", command=options.viewer_command,
                          control=options.viewer_control_url())
        handle = ViewerHandle(spec, self, port)
        self.viewers[name] = handle
        await handle.start()  # writes the join action itself
        if handle.testee is not None and handle.testee.process is not None:
            self.sampler.watch(f"{TESTEE_VIEWER_PROCESS}.{vid}", handle.testee.process.pid)

    async def _kill_external(self, name: str) -> None:
        """Its process group ended as a scenario's kill_viewer ends an external Viewer
        (SIGTERM, SIGKILL after a grace: a Viewer that writes no DISCONNECTED when it is
        terminated leaves its episode open to the end of the soak, docs/soak.md), its tap
        and inlet closed, its telemetry file read one last time."""
        handle = self.viewers.pop(name, None)
        if handle is not None:
            await handle.stop(abrupt=True)

    async def _start_external_viewers(self) -> None:
        """The external Viewers join at the start; the nemesis kills and rejoins them like
        the population's (a rejoin is a new process, `x01r2`)."""
        for vid in self.external_ids:
            self.incarnations[vid] = 1
            await self._join_external(vid, vid)

    async def _set_up(self) -> None:
        await self._start_primary()
        await self._build_path()
        if self.fleet_workers is not None:
            await asyncio.to_thread(self._start_fleet)
        else:
            await asyncio.to_thread(self.population.start)
            if self.population.pid is not None:
                self.sampler.watch("viewers", self.population.pid)
                self.cpu_wait.watch(self.population.pid)
        self.cpu_wait.watch_loop(asyncio.get_running_loop())
        self.cpu_wait.start()
        for vid in self.schedule.initial:
            await self.act("join", {"viewer": vid})
        await self._start_external_viewers()

    async def _watched(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work`, but stop at once when a testee ends unasked (a Primary that exits at
        start is reported as such, not as a port that never listened)."""
        assert self.testee_exit is not None
        body = asyncio.ensure_future(work)
        either: set[asyncio.Future[Any]] = {body, self.testee_exit}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not body.done():
            body.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await body
            raise TesteeFailed(self.testee_exit.result())
        body.result()

    async def _testee_ended(self) -> None:
        assert self.testee_exit is not None
        raise TesteeFailed(await self.testee_exit)

    async def _tap_for(self, name: str, *, external: bool = False) -> int:
        """A tap of its own for one Viewer incarnation. An external Viewer's listens on
        --listen (every incarnation on its fixed port, if one was given: a device keeps
        one setting; the old incarnation's tap is stopped by its kill)."""
        host, port = HOST, 0
        if external:
            host, port = self.network.listen_host, self.network.listen_port
        tap = await self.open_viewer_tap(
            name, host, port, announce=f"the Viewer {name}" if external else None)
        self.taps[name] = tap
        return int(tap.port)

    def fixed_telemetry_port(self) -> int:
        """--telemetry-port for every incarnation of the (one) external Viewer."""
        return self.network.telemetry_port

    def _start_fleet(self) -> None:
        from harness.soak.fleet import Fleet

        assert self.fleet_workers is not None
        self.fleet = Fleet(
            host=HOST,
            port=self.entry_port,
            bind=self.fleet_bind,
            master_port=self.fleet_master_port,
            secret=SECRET,
            seed=self.seed,
            users=self.profile.viewers,
            workers=self.fleet_workers,
            remote_workers=self.fleet_remote_workers,
            duration=self.profile.duration,
            directory=self.directory,
            figures_interval=self.profile.sample_interval,
            records=self.trace.write,
            figures=self.sampler.viewer_figures,
        )
        self.fleet.start()
        log.info("Locust fleet: master on %s:%d; another worker: %s", self.fleet.bind,
                 self.fleet.master_port, self.fleet.remote_worker_command())
        for name, pid in self.fleet.pids().items():
            self.sampler.watch(name, pid)

    # --- actions ----------------------------------------------------------------

    async def act(self, do: str, args: dict[str, Any]) -> None:
        if do == "join":
            vid = str(args["viewer"])
            name = incarnation(vid, self.incarnations.get(vid, 0) + 1)
            self.incarnations[vid] = self.incarnations.get(vid, 0) + 1
            if vid in self.external_ids:
                await self._join_external(vid, name)
                return
            port = await self._tap_for(name)
            self.trace.emit("action", action="join", viewer=name)
            self.population.join(name, port, vid in self.schedule.decoding)
        elif do == "kill_viewer":
            vid = str(args["viewer"])
            name = incarnation(vid, self.incarnations.get(vid, 1))
            self.trace.emit("action", action="kill_viewer", viewer=name)
            if vid in self.external_ids:
                await self._kill_external(name)
            else:
                self.population.kill(name)
            tap = self.taps.pop(name, None)
            if tap is not None:
                await tap.stop()  # its listening socket goes with it: descriptors stay flat
            # The name is not used again (the next join is a new incarnation): once its last
            # records are judged, the rules forget it, so memory stays flat over a night.
            with self._lock:
                now = self.trace.now()
                for engine in (self.engine, self.harness_engine):  # beside a testee, both
                    if engine is not None:
                        engine.retire(name, now)
        else:
            self.trace.emit("action", action=do, **args)
            await self._do(ScenarioStep(line=0, do=do, args=dict(args)))
            if self.status_poller is not None:
                self.status_poller.poke()  # an external Primary's state, asked at once

    async def _run_schedule(self) -> None:
        timeline: list[tuple[float, int, Step, bool]] = []
        for order, step in enumerate(self.schedule.steps):
            timeline.append((step.at, order, step, True))
            if step.end:
                timeline.append((step.until, order, step, False))
        timeline.sort(key=lambda e: (e[0], e[1], not e[3]))
        for at, _, step, begin in timeline:
            delay = at - self.elapsed()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule's own clock
            acts = step.begin if begin else step.end
            if begin:
                self.active[step.id] = step
            else:
                self.active.pop(step.id, None)
            for a in acts:
                entry = {"t": round(self.elapsed(), 3), "step": step.id, "do": a["do"],
                         "with": a["with"]}
                try:
                    await self.act(a["do"], a["with"])
                except Exception as exc:  # reported, the soak goes on
                    entry["error"] = repr(exc)
                    self.result.problems.append(f"{step.id} {a['do']} at {at:.3f} s: {exc!r}")
                    log.error("soak step %s failed:\n%s", step.id, traceback.format_exc())
                self.result.executed.append(entry)
            if not step.end and step.duration > 0:
                self.active.pop(step.id, None)  # instant steps: shown while their effect lasts

    # --- windows and samples ------------------------------------------------------

    def _fail_entry(self, v: Verdict, index: int, end: float, peer: str) -> dict[str, Any]:
        split = self.split
        peers = ("the reference peers" if split is None
                 else split.testee_name() if peer == "testee" else split.harness_name())
        return {
            "id": f"w{index:04d}-{v.requirement}" + ("-harness" if peer == "harness" else ""),
            "window": index,
            "requirement": v.requirement,
            "summary": v.summary,
            # Whose records the evidence came from: "testee" (an external peer), "harness"
            # (a reference peer beside a testee: a harness fault) or "reference" (no testee).
            "peer": peer if split is not None else "reference",
            "peers": peers,
            "start": round(self._window_start, 3),
            "end": round(end, 3),
            "evidence": [
                {**e.as_dict(), "t": None if e.t is None else round(self.relative(e.t), 3)}
                for e in v.evidence
            ],
            "host": self._host_during(self._window_start, end),
        }

    def _close_window(
        self, verdicts: list[Verdict], end: float, harness: list[Verdict] | None = None
    ) -> WindowSummary:
        index = len(self.result.windows)
        harness_fails = [v for v in harness or [] if v.status is Status.FAIL]
        counts = {s.value: 0 for s in Status}
        for v in verdicts:
            tainted = bool(harness_fails) and v.status in (Status.PASS, Status.FAIL)
            counts[(Status.INCONCLUSIVE if tainted else v.status).value] += 1
        summary = WindowSummary(
            index, self._window_start, end, self._window_records, counts,
            faults=[s.id for s in self.schedule.overlapping(self._window_start, end)],
        )
        for v in harness_fails:
            fault = self._fail_entry(v, index, end, "harness")
            summary.harness_faults.append(fault)
            self.result.harness_faults.append(fault)
        for v in verdicts:
            if v.status is Status.FAIL:
                fail = self._fail_entry(v, index, end, "testee")
                if harness_fails:
                    # A reference peer FAILed in the same window: a harness fault, and the
                    # testee's FAIL there is INCONCLUSIVE (docs/certify.md, "Judging").
                    fail["status"] = Status.INCONCLUSIVE.value
                    fail["reason"] = "harness fault in this window: " + ", ".join(
                        f["requirement"] for f in summary.harness_faults)
                    summary.inconclusive.append(fail)
                    self.result.inconclusive.append(fail)
                    continue
                summary.fails.append(fail)
                self.result.fails.append(fail)
        self.segments.rotate(bool(summary.fails or summary.harness_faults))
        self.result.windows.append(summary)
        self._window_start = end
        self._window_records = 0
        return summary

    def _host_during(self, start: float, end: float) -> dict[str, float]:
        """The worst loop lag and load seen in a window: context for a timing FAIL."""
        out: dict[str, float] = {}
        for name in ("harness.loop_lag_ms", "host.load1"):
            series = self.sampler.series.get(name)
            values = [v for t, v in series.points if start <= t <= end + 1] if series else []
            if values:
                out[name] = max(values)
        return out

    async def _windows(self) -> None:
        while True:
            await asyncio.sleep(self.window_s - (self.elapsed() - self._window_start))
            with self._lock:
                verdicts = self.engine.window()
                harness = self.harness_engine.window() if self.harness_engine else None
                summary = self._close_window(verdicts, self.elapsed(), harness)
            if self.dashboard is not None:
                self.dashboard.window_closed(summary)

    async def _loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_S)  # the probe: how late does the loop wake us?
            late = loop.time() - before - LAG_PROBE_S
            self.sampler.loop_lag = max(self.sampler.loop_lag, late)

    async def _samples(self) -> None:
        while True:
            now = time.monotonic()
            # Free memory glibc kept in its arenas goes back first: RSS then follows what
            # is in use (harness/soak/allocator.py).
            self.trimmer.maybe_trim(now)
            self.sampler.sample(now)
            await asyncio.sleep(self.profile.sample_interval)  # the sampling interval

    # --- the whole soak -------------------------------------------------------------

    async def soak(self) -> SoakResult:
        result = self.result
        self.started = time.monotonic()
        self.started_trace = self.last_action = self.trace.now()
        self.sampler.started = self.started
        self.trace.emit("note", text=f"soak {self.profile.name} seed {self.seed}")
        tasks: list[asyncio.Task[None]] = []
        # Set, with the report, by a testee that fails to start or ends unasked: it ends
        # the soak at once, as it ends a scenario (harness/scenarios/external.py).
        self.testee_exit = asyncio.get_running_loop().create_future()
        try:
            await self._watched(self._set_up())
            tasks = [
                asyncio.create_task(self._run_schedule(), name="nemesis"),
                asyncio.create_task(self._windows(), name="windows"),
                asyncio.create_task(self._samples(), name="sampler"),
                asyncio.create_task(self._loop_lag(), name="loop lag"),
                asyncio.create_task(self._testee_ended(), name="testee"),
            ]
            if self.dashboard is not None:
                tasks.append(asyncio.create_task(self.dashboard.refresh_loop(self)))
            remaining = self.profile.duration - self.elapsed()
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, remaining),
                                         return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None and task.get_name() != "nemesis":
                    raise task.exception()  # type: ignore[misc]
        except (TesteeFailed, ScenarioAbort) as exc:  # an external peer: said in its words
            result.problems.append(str(exc))
            log.error("soak ended: %s", exc)
        except Exception as exc:
            result.problems.append(f"harness error: {exc!r}")
            log.error("soak crashed:\n%s", traceback.format_exc())
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.sampler.sample(time.monotonic())
            await asyncio.to_thread(self.population.stop)
            if self.fleet is not None:
                await asyncio.to_thread(self.fleet.stop)
            for tap in self.taps.values():
                with contextlib.suppress(Exception):
                    await tap.stop()
            await self._teardown()
            if self.split is not None:
                result.testees = {
                    "judged": self.split.testee_name(),
                    "harness": self.split.harness_name(),
                    "processes": {role: t.logs.as_dict() for role, t in self.testees.items()},
                    "not_drawn": self.schedule.left_out,
                }
        with self._lock:
            result.verdicts = self.engine.finish()
            harness: list[Verdict] | None = None
            if self.harness_engine is not None:
                result.harness_verdicts = self.harness_engine.finish()
                harness = self.harness_engine.window()
            self._close_window(self.engine.window(), self.elapsed(), harness)
            if self.split is not None:
                result.verdicts = self._overall(result.verdicts)
            self.segments.close()
            result.records = self.engine.records
            result.late_records = self.engine.sequencer.late
        result.duration = self.elapsed()
        self._judge_drift(result)
        result.figures = self.sampler.as_dict()
        result.disk = {
            "segments_bytes": self.segments.disk_bytes(),
            "dropped_bytes": self.segments.dropped_bytes,
            "kept_segments": sorted(self.segments.kept),
            "dropped_segments": len(self.segments.dropped),
        }
        result.allocator = self.trimmer.as_dict()
        return result


    def _judge_drift(self, result: SoakResult) -> None:
        """The profile's drift limits; beside a testee, those on the harness's processes
        are its health (a FAIL is a harness fault) and bind the testee's processes too
        (`Split.drift_limits`)."""
        limits, harness = list(self.profile.limits), list[Limit]()
        if self.split is not None:
            limits, harness = self.split.drift_limits(limits, self.sampler.series)
        warmup, least = self.profile.warmup, self.profile.min_samples
        result.drift = judge_all(limits, self.sampler.series, warmup, least)
        result.harness_drift = judge_all(harness, self.sampler.series, warmup, least)
        for d in result.harness_drift:
            if d.status is Status.FAIL:
                result.harness_faults.append({
                    "id": f"drift-{d.limit.metric}-harness",
                    "window": None,
                    "requirement": d.limit.name,
                    "summary": d.summary,
                    "peer": "harness",
                    "peers": f"the harness's own process ({d.limit.metric.partition('.')[0]})",
                    "start": round(self.profile.warmup, 3),
                    "end": round(result.duration, 3),
                    "evidence": [],
                    "host": {},
                })

    def _overall(self, verdicts: list[Verdict]) -> list[Verdict]:
        """A testee FAIL seen only in windows with a harness fault is INCONCLUSIVE overall."""
        kept = {f["requirement"] for f in self.result.fails}
        tainted = {f["requirement"] for f in self.result.inconclusive}
        out = []
        for v in verdicts:
            if v.status is Status.FAIL and v.requirement in tainted - kept:
                v = Verdict(v.requirement, Status.INCONCLUSIVE,
                            f"harness fault in every window it FAILed in (FAIL otherwise: "
                            f"{v.summary})", v.evidence)
            out.append(v)
        return out


def run_soak(profile: Profile, directory: Path, seed: int, **kwargs: Any) -> SoakResult:
    directory.mkdir(parents=True, exist_ok=True)
    run = SoakRun(profile, directory, seed, **kwargs)
    (directory / "schedule.json").write_text(json.dumps(run.schedule.as_dict(), indent=1))
    return asyncio.run(run.soak())
