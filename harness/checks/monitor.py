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

`self.ctx.at(when, callback)` runs `callback(now)` once trace time passes `when`:
how a monitor waits for something that must happen within a window.
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
        return self._judge(self.violation_count, self.violations, self.checked, self.support)

    def window(self) -> Verdict:
        """The verdict over what was judged since the previous window."""
        checked = self.checked - self._window_checked
        verdict = self._judge(self._window_count, self._window_violations, checked, [])
        self._window_checked = self.checked
        self._window_violations, self._window_count = [], 0
        return verdict

    def _judge(
        self, count: int, violations: list[Evidence], checked: int, support: list[Evidence]
    ) -> Verdict:
        req = self.requirement
        if count:
            return failed(req, f"{count} violation(s) among {self.checks}", violations)
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
