"""Monitors: one per requirement, fed trace records in order, verdict at the end.

A monitor is the Zeek-script shape of a checker. The engine hands it what it
asked for, one record at a time and already parsed (a `WireFrame`, a
`TelemetryRecord`, a connection that opened or ended, an action, a fault, a
Primary record); it keeps only the state its rule needs, per live connection or
Viewer episode, and drops that state when the connection or episode ends.
`feed` is O(1) amortised per record. At the end, `verdict()` gives PASS, FAIL or
NOT_OBSERVED with evidence; in between, `window()` gives the same for the records
since the last window (a soak asks "what failed in the last minute").

A monitor says how it reads its rule in its docstring: what is checked, what
counts as evidence, its windows and tolerances and where they come from. Those
docstrings are printed into reference/CHECKS.md.

Hooks a monitor may define (the engine calls only those a monitor overrides):

    on_open(conn)            a tap connection opened
    on_frame(frame)          every frame on a tap connection (WireFrame), before the
                             connection's facts are updated with it
    on_control(frame)        only CONTROL frames (most rules: far fewer than media)
    on_media(frame)          only CSD, VIDEO and AUDIO frames
                             (on_frame and on_media skip plain media for a monitor
                             whose `reads_plain_media` is False)
    on_wire_error(conn, record)  a tap could not decode a direction any more
    on_end(conn)             a connection closed (conn.closed set) or the trace ended
                             with it open (conn.closed None); its state can go
    on_telemetry(rec)        a Viewer telemetry record (TelemetryRecord), before the
                             episode's facts are updated with it; only the kinds in
                             the monitor's `telemetry_kinds` when it names them
    on_episode_end(ep)       a Viewer's episode ended (its next SOCKET_CONNECTED, or
                             the end of the trace)
    on_action(record)        a scenario action that was delivered
    on_fault(record)         a fault applied by an injector
    on_primary(record)       the Primary's own report of its stream state
    on_finish(end)           the trace ended at time `end`: settle what is pending

and, not a hook but a method every monitor has: `forget_viewer(viewer, now)`, a
Viewer that will never come back (`Engine.retire`) is dropped from the rule's tables.

`self.ctx.at(when, callback)` runs `callback(now)` once trace time passes `when`.
`self.ctx.deadline(since, within, callback)` is how a monitor waits for a peer
to do something within a window: the window is lengthened by the CPU wait the
trace measured inside it (`cpu_wait` records, harness/checks/cpu_ledger.py), so a
late peer is not failed for the host's queueing. `self.in_time(since, within, t)`
judges the time something happened the same way, and excuses (`excuse`) what was
in time only thanks to that wait: such a rule's verdict is INCONCLUSIVE, not PASS,
unless something FAILs. `self.ctx.lag(t)` is "how far may a Viewer lag behind its
socket at `t`": the tolerance plus that wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from harness.checks.verdict import (
    MAX_EVIDENCE,
    Evidence,
    Verdict,
    failed,
    inconclusive,
    not_observed,
    passed,
)
from harness.trace import viewer_tap_name
from reference.protocol.telemetry import RecordKind
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

if TYPE_CHECKING:
    from harness.checks.engine import Engine
    from harness.checks.monitors.viewer_link import Links
    from harness.checks.wire import Conn, WireFrame

# Slack for timing rules: scheduling and loopback jitter on a loaded 2-core host.
# PROTOCOL.md section 10 states it; a scenario may set `tolerance` per requirement.
DEFAULT_TOLERANCE = 0.3

HOOKS = (
    "on_open",
    "on_frame",
    "on_control",
    "on_media",
    "on_wire_error",
    "on_end",
    "on_telemetry",
    "on_episode_end",
    "on_action",
    "on_fault",
    "on_primary",
    "on_finish",
)


@dataclass
class MonitorContext:
    """What a monitor is given: its parameters, the timings, and the engine's clock."""

    params: dict[str, Any] = field(default_factory=dict)
    timings: Timings = DEFAULT_TIMINGS
    engine: Engine | None = None

    @property
    def tolerance(self) -> float:
        return float(self.params.get("tolerance", DEFAULT_TOLERANCE))

    def param(self, name: str, default: Any) -> Any:
        return self.params.get(name, default)

    def at(self, when: float, callback: Callable[[float], None]) -> None:
        if self.engine is not None:
            self.engine.at(when, callback)

    def deadline(self, since: float, within: float, callback: Callable[[float], None]) -> None:
        """`at(since + within)`, moved later by the CPU wait measured inside the window:
        how a rule waits for a peer to do something in time (PROTOCOL.md 10.1)."""
        if self.engine is not None:
            self.engine.deadline(since, within, callback)

    def cpu_wait(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1] in which the host kept the run's processes from a CPU."""
        return self.engine.cpu.wait(t0, t1) if self.engine is not None else 0.0

    def lag(self, t: float) -> float:
        """How far a peer may lag behind its socket at `t`: the tolerance, plus the CPU
        wait measured inside it."""
        if self.engine is None:
            return self.tolerance
        return self.engine.cpu.lag(t, self.tolerance)

    @property
    def now(self) -> float:
        return self.engine.now if self.engine is not None else 0.0

    def shared_links(self) -> Links:
        """The engine's one link tracker, fed every frame before any monitor sees it."""
        if self.engine is None:
            from harness.checks.monitors.viewer_link import Links

            return Links()
        return self.engine.links

    def viewer_conn(self, viewer: str) -> Conn | None:
        """The Viewer's newest connection on its own tap: its wire, for cross-checks."""
        return self.engine.conns.of_viewer(viewer) if self.engine is not None else None


class Monitor:
    """Base of every monitor: counts what was checked, keeps the evidence."""

    requirement: ClassVar[str] = ""
    # What one checked item is, for the verdict's summary ("3 challenge(s) checked").
    checks: ClassVar[str] = "item(s)"
    # The telemetry record kinds `on_telemetry` wants (None: every record): most rules
    # read a few kinds, and per-frame records are most of a trace.
    telemetry_kinds: ClassVar[frozenset[RecordKind] | None] = None
    # Whether the rule reads plain media: AUDIO and non-key VIDEO frames from the Primary
    # (`WireFrame.plain_media`) and the Viewer's telemetry of decoding them
    # (`TelemetryRecord.plain_media`). They are most of a trace; a rule that reads only
    # control, CSD and keyframes says False, and must then judge exactly as if it had
    # been handed them (tests/checks/test_fast_paths.py holds it to that).
    reads_plain_media: ClassVar[bool] = True

    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx
        self.timings = ctx.timings
        self.tolerance = ctx.tolerance
        self.checked = 0
        self.violation_count = 0
        self.violations: list[Evidence] = []
        self.support: list[Evidence] = []
        self._window_checked = 0
        self._window_violations: list[Evidence] = []
        self._window_count = 0
        # Items that met their time limit only with the measured CPU wait left out.
        self.excuses: list[Evidence] = []
        self._window_excuses: list[Evidence] = []

    # --- what the rules call ------------------------------------------------

    def check(self, count: int = 1) -> None:
        """`count` more items were judged (conforming or not)."""
        self.checked += count

    def fail(self, t: float | None, what: str, where: str = "") -> None:
        evidence = Evidence(t, what, where)
        self.violation_count += 1
        self._window_count += 1
        if len(self.violations) < MAX_EVIDENCE:
            self.violations.append(evidence)
        if len(self._window_violations) < MAX_EVIDENCE:
            self._window_violations.append(evidence)

    def skip_plain_media(self, frame: WireFrame) -> None:
        """Having judged `frame`, this rule reads no more plain media of its connection.

        For a rule that reads plain media only until some fact of the connection is
        settled (its first frame, AUTH_OK, STREAM_ACCEPTED) and never again: the engine
        stops handing them over, and the verdict must be exactly what it would have
        been (tests/checks/test_fast_paths.py). Acts on plain media frames only, so a
        rule may call it on whatever frame it returns from.
        """
        if frame.plain_media and self.ctx.engine is not None:
            self.ctx.engine.skip_plain_media(self, frame.conn)

    def in_time(self, since: float, within: float, t: float, where: str = "") -> bool:
        """Whether `t` is within `within` of `since`, the CPU wait between not counted.

        In time only once that wait is left out: not a FAIL, but not a PASS either (the
        host, not the peer, may have made it late), so the item is excused and the
        verdict INCONCLUSIVE unless something else FAILs.
        """
        late = t - since - within
        if late <= 0:
            return True
        wait = self.ctx.cpu_wait(since, t)
        if late > wait:
            return False
        self.excuse(t, f"{late:.2f} s over its {within:.2f} s limit (from {since:.2f}), "
                    f"within the {wait:.2f} s the host kept the peers from a CPU", where)
        return True

    def not_early(self, since: float, low: float, t: float, where: str = "") -> bool:
        """Whether `t` is at least `low` after `since`, as the taps stamped them.

        A tap held up when it read the earlier of the two stamps it late, and the
        gap looks short: a gap short by no more than the wait measured from `low`
        before `since` up to `t` is excused (INCONCLUSIVE), not failed.
        """
        gap = t - since
        if gap >= low:
            return True
        wait = self.ctx.cpu_wait(since - low, t)
        if gap + wait < low:
            return False
        self.excuse(t, f"{low - gap:.2f} s under its {low:.2f} s minimum (from {since:.2f}), "
                    f"within the {wait:.2f} s the host kept the peers or the taps from a CPU",
                    where)
        return True

    def excuse(self, t: float | None, what: str, where: str = "") -> None:
        """An item met its limit only with the measured CPU wait left out."""
        evidence = Evidence(t, what, where)
        if len(self.excuses) < MAX_EVIDENCE:
            self.excuses.append(evidence)
        if len(self._window_excuses) < MAX_EVIDENCE:
            self._window_excuses.append(evidence)

    def waited(self, since: float, now: float) -> str:
        """For evidence: the CPU wait a deadline from `since` to `now` excused, if any."""
        wait = self.ctx.cpu_wait(since, now)
        return f" (of which {wait:.2f} s waiting for a CPU, not counted)" if wait > 0 else ""

    def note(self, t: float | None, what: str, where: str = "") -> None:
        """Evidence of conformance, shown beside a PASS."""
        if len(self.support) < MAX_EVIDENCE:
            self.support.append(Evidence(t, what, where))

    def forget_viewer(self, viewer: str, now: float) -> None:
        """`viewer` is gone for good (`Engine.retire`): drop what the rule keeps for it.

        Called once its records were all judged, its connections and its episode ended and
        every deadline set for it passed. What a rule keeps per Viewer lives in dicts and
        sets keyed by the Viewer's name, its tap's name, its `Episode` or `Conn`, or a
        tuple holding one of those: every such key goes. A rule that judges a Viewer's
        leftovers in `on_finish` overrides this to judge them first, with `now` as the end.
        """
        tap = viewer_tap_name(viewer)
        for table in vars(self).values():
            if isinstance(table, dict | set):
                gone = [key for key in table if _of_viewer(key, viewer, tap)]
                for key in gone:
                    if isinstance(table, dict):
                        del table[key]
                    else:
                        table.discard(key)

    # --- results ------------------------------------------------------------

    def verdict(self) -> Verdict:
        return self._judge(
            self.violation_count, self.violations, self.checked, self.support, self.excuses
        )

    def window(self) -> Verdict:
        """The verdict over what was judged since the previous window."""
        checked = self.checked - self._window_checked
        verdict = self._judge(
            self._window_count, self._window_violations, checked, [], self._window_excuses
        )
        self._window_checked = self.checked
        self._window_violations, self._window_count = [], 0
        self._window_excuses = []
        return verdict

    def _judge(
        self, count: int, violations: list[Evidence], checked: int, support: list[Evidence],
        excuses: list[Evidence],
    ) -> Verdict:
        req = self.requirement
        if count:
            return failed(req, f"{count} violation(s) among {self.checks}", violations)
        if excuses:
            return inconclusive(
                req, f"some {self.checks} in time only with the host's CPU wait left out: "
                "a slow peer and a starved host look the same (PROTOCOL.md 10.1)",
                excuses,
            )
        if checked == 0:
            return not_observed(req, f"the trace holds no {self.checks} to check")
        return passed(req, f"{checked} {self.checks} checked, all conform", support)


def _of_viewer(key: object, viewer: str, tap: str) -> bool:
    """Whether a table's key belongs to `viewer` (see `Monitor.forget_viewer`)."""
    if isinstance(key, str):
        return key in (viewer, tap)
    if isinstance(key, tuple):
        return any(_of_viewer(part, viewer, tap) for part in key)
    return getattr(key, "viewer", None) == viewer  # an Episode, a Conn


MONITORS: dict[str, type[Monitor]] = {}


def monitor(cls: type[Monitor]) -> type[Monitor]:
    """Register a monitor class under its requirement ID (one per ID)."""
    if not cls.requirement:
        raise RuntimeError(f"{cls.__name__} names no requirement")
    if cls.requirement in MONITORS:
        raise RuntimeError(f"two monitors for {cls.requirement}")
    MONITORS[cls.requirement] = cls
    return cls


def overridden_hooks(cls: type[Monitor]) -> tuple[str, ...]:
    return tuple(name for name in HOOKS if getattr(cls, name, None) is not None)
