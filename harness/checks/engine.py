"""The verdict engine: trace records in, one at a time; verdicts out, at the end or per window.

The same engine serves a scenario (its trace, after the run), `harness check` (a
stored trace read line by line) and a soak (records as they are written). The
data path reads one way:

    records -> Sequencer (wire order within a source, time across)
            -> trackers (connections, Viewer episodes: the facts before the record)
            -> monitors (one per requirement)
            -> trackers updated with the record
            -> verdicts

Memory is bounded by the live connections and episodes and by the sequencer's
lag, never by the length of the trace. What a rule keeps per Viewer (by name) stays
until the end, since a Viewer that went away may connect again under the same name;
a soak, whose killed Viewers come back under new names, says so (`Engine.retire`)
and their state goes too.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from functools import partial
from itertools import count
from typing import Any

from harness.checks.cpu_ledger import MAX_MOVES, CpuLedger
from harness.checks.episodes import EpisodeTracker
from harness.checks.monitor import MONITORS, Monitor, MonitorContext, overridden_hooks
from harness.checks.monitors.viewer_link import Links
from harness.checks.order import DEFAULT_LAG, Sequencer, viewer_source
from harness.checks.verdict import Verdict, not_observed
from harness.checks.wire import Conn, ConnectionTracker, WireFrame
from harness.cpu_wait import KIND as CPU_WAIT
from harness.trace import Record
from reference.protocol.telemetry import RecordKind
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

Handler = Callable[..., None]

# Trace seconds a retired Viewer's last records may still arrive after its retirement
# (its last telemetry batch through the population's pipe, its tap's close), beyond the
# sequencer's lag.
RETIRE_SLACK = 5.0
_RECORDS_IN, _DEADLINES_PAST = 0, 1  # a retirement's stages: see Engine._retire_due


class FrameClass(str, Enum):
    """What a frame is, for the hooks it goes to."""

    CONTROL = "control"
    PLAIN_MEDIA = "plain media"  # WireFrame.plain_media
    MEDIA = "media"  # CSD and keyframes, and media from the Viewer
    OTHER = "other"  # a frame type the format does not define


FRAME_HOOKS: dict[FrameClass, tuple[str, ...]] = {
    FrameClass.CONTROL: ("on_frame", "on_control"),
    FrameClass.PLAIN_MEDIA: ("on_frame", "on_media"),
    FrameClass.MEDIA: ("on_frame", "on_media"),
    FrameClass.OTHER: ("on_frame",),
}
_CONTROL, _PLAIN, _MEDIA, _OTHER = FrameClass  # bound once: read for every frame


def frame_class(frame: WireFrame) -> FrameClass:
    if frame.is_control:
        return _CONTROL
    if frame.plain_media:
        return _PLAIN
    return _MEDIA if frame.is_media else _OTHER


class Engine:
    """Feeds records to a set of monitors; `finish()` returns one verdict per requirement."""

    def __init__(
        self,
        requested: Mapping[str, Mapping[str, Any] | None] | None = None,
        timings: Timings = DEFAULT_TIMINGS,
        *,
        lag: float = DEFAULT_LAG,
        exhaustive: bool = False,
    ) -> None:
        """`exhaustive` hands plain media to every monitor, whatever it declares
        (`Monitor.reads_plain_media`): the reference the fast path is tested against."""
        from harness.checks import monitors  # noqa: F401  (registers every monitor)

        wanted = dict(requested) if requested is not None else dict.fromkeys(MONITORS)
        self.order = list(wanted)
        self.timings = timings
        self._links: Links | None = None  # made when a monitor asks for it
        self.monitors: dict[str, Monitor] = {}
        self.missing: list[str] = []
        for requirement, params in wanted.items():
            cls = MONITORS.get(requirement)
            if cls is None:
                self.missing.append(requirement)
                continue
            ctx = MonitorContext(dict(params or {}), timings, self)
            self.monitors[requirement] = cls(ctx)
        self._hooks: dict[str, list[Handler]] = defaultdict(list)
        # Telemetry handlers by record kind (None: a kind the format does not define),
        # for every record and for plain media records.
        self._telemetry_hooks: dict[RecordKind | None, list[Handler]] = defaultdict(list)
        self._plain_telemetry_hooks: dict[RecordKind | None, list[Handler]] = defaultdict(list)
        # Frame handlers by what the frame is: on_frame's, then on_control's or on_media's.
        self._frame_hooks: dict[FrameClass, list[Handler]] = {c: [] for c in FrameClass}
        for instance in self.monitors.values():
            plain = exhaustive or instance.reads_plain_media
            hooks = overridden_hooks(type(instance))
            for name in hooks:
                handler = getattr(instance, name)
                if name == "on_telemetry":
                    kinds = instance.telemetry_kinds
                    for kind in (*RecordKind, None):
                        if kinds is None or kind in kinds:
                            self._telemetry_hooks[kind].append(handler)
                            if plain:
                                self._plain_telemetry_hooks[kind].append(handler)
                else:
                    self._hooks[name].append(handler)
            for frames, names in FRAME_HOOKS.items():
                if frames is FrameClass.PLAIN_MEDIA and not plain:
                    continue
                self._frame_hooks[frames] += [getattr(instance, n) for n in names if n in hooks]
        # Every monitor's on_frame runs before any monitor's on_control or on_media.
        for handlers in self._frame_hooks.values():
            handlers.sort(key=lambda h: h.__name__ != "on_frame")
        # Per connection, the plain media handlers of the monitors that still read it
        # (`Monitor.skip_plain_media`); a connection absent here has them all.
        self._exhaustive = exhaustive
        self._plain_hooks: dict[Conn, list[Handler]] = {}
        self.sequencer = Sequencer(lag)
        self.conns = ConnectionTracker()
        self.episodes = EpisodeTracker()
        self.cpu = CpuLedger()
        self.now = float("-inf")
        self.records = 0
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._timer_order = count()
        # Viewers retired (`retire`) and not yet forgotten: (when, stage, name), a heap.
        self._retiring: list[tuple[float, int, str]] = []
        self._dispatch: dict[str, Callable[[Record], None]] = {
            "frame": self._frame,
            "conn": self._conn,
            "wire_error": self._wire_error,
            "telemetry": self._telemetry,
            "action": self._simple("on_action"),
            "fault": self._simple("on_fault"),
            "primary": self._simple("on_primary"),
        }
        self._finished = False

    @property
    def links(self) -> Links:
        """Every Viewer's link as its own tap delivered it, kept once for all monitors."""
        if self._links is None:
            self._links = Links()
        return self._links

    # --- input --------------------------------------------------------------

    def feed(self, record: Record) -> None:
        for ready in self.sequencer.push(record):
            self._process(ready)

    def feed_all(self, records: Iterable[Record]) -> Engine:
        for record in records:
            self.feed(record)
        return self

    def at(self, when: float, callback: Callable[[float], None]) -> None:
        """Call `callback(now)` once trace time has passed `when`."""
        heapq.heappush(self._timers, (when, next(self._timer_order), callback))

    def deadline(self, since: float, within: float, callback: Callable[[float], None]) -> None:
        """Call `callback(now)` once `within` seconds of `since` have passed in which the
        peers could run: the CPU wait measured inside the window moves it later
        (harness/checks/cpu_ledger.py)."""
        self.at(since + within, partial(self._deadline_due, since, within, callback, 0))

    def _deadline_due(
        self, since: float, within: float, callback: Callable[[float], None], moves: int,
        now: float,
    ) -> None:
        later = since + within + self.cpu.wait(since, now)
        if later > now + 1e-6 and moves < MAX_MOVES:
            self.at(later, partial(self._deadline_due, since, within, callback, moves + 1))
        else:
            callback(now)

    def _process(self, record: Record) -> None:
        t = float(record["t"])
        kind = str(record["kind"])
        if kind == CPU_WAIT:
            self.cpu.add(record)  # before the timers: a deadline inside its period reads it
        if self._timers and self._timers[0][0] < t:
            self._run_timers(t)
        if self._retiring and self._retiring[0][0] < t:
            self._retire_due(t)
        if t > self.now:
            self.now = t
        self.records += 1
        handle = self._dispatch.get(kind)
        if handle is not None:
            handle(record)

    def retire(self, viewer: str, t: float) -> None:
        """`viewer` will not connect or report again after trace time `t`: forget it.

        A soak's killed Viewer joins again under a new name (`v07r2`), so without this
        every incarnation would leave its entries in the rules' per-Viewer tables for the
        rest of the night. Once the trace is past `t` by the sequencer's lag and
        RETIRE_SLACK, and then past every deadline a rule had set by that time, the
        Viewer is settled as the end of the trace would settle it (its connections
        still open end, then its episode ends, then each monitor's `forget_viewer`), and
        the engine's own tables drop it. The verdicts are those of a run without the
        call (tests/checks/test_retire.py). Only for Viewers with a name of their own:
        rules that read an unnamed Viewer tap fall back on "the only Viewer".
        """
        settled = t + self.sequencer.lag + RETIRE_SLACK
        heapq.heappush(self._retiring, (settled, _RECORDS_IN, viewer))

    def _retire_due(self, until: float) -> None:
        # Apart from the rules' timers: a retirement waits for the rules' deadlines only,
        # never for another retirement (with a kill every second it would never come).
        while self._retiring and self._retiring[0][0] < until:
            when, stage, viewer = heapq.heappop(self._retiring)
            if stage == _RECORDS_IN:
                # Every deadline set for the Viewer's records is among the timers pending
                # now (those before `until` have run): wait for the last of them.
                last = max((due for due, _, _ in self._timers), default=when)
                if last > when:
                    heapq.heappush(self._retiring, (last, _DEADLINES_PAST, viewer))
                    continue
            self._forget_viewer(viewer, when)

    def _forget_viewer(self, viewer: str, now: float) -> None:
        for conn in [c for c in self.conns.live.values() if c.viewer == viewer]:
            self._call("on_end", conn)
            self.conns.forget(conn)
            self._plain_hooks.pop(conn, None)
        episode = self.episodes.current.get(viewer)
        if episode is not None:
            self._call("on_episode_end", episode)
        for monitor in self.monitors.values():
            monitor.forget_viewer(viewer, now)
        self.episodes.forget(viewer)
        self.conns.forget_viewer(viewer)
        if self._links is not None:
            self._links.by_viewer.pop(viewer, None)
        self.sequencer.forget_source(viewer_source(viewer))

    def _run_timers(self, until: float) -> None:
        while self._timers and self._timers[0][0] < until:
            when, _, callback = heapq.heappop(self._timers)
            callback(when)

    def _call(self, hook: str, *args: Any) -> None:
        for handler in self._hooks.get(hook, ()):
            handler(*args)

    def skip_plain_media(self, monitor: Monitor, conn: Conn) -> None:
        """`monitor` reads no more plain media of `conn` (see `Monitor.skip_plain_media`)."""
        if self._exhaustive:
            return
        hooks = self._plain_hooks.get(conn, self._frame_hooks[_PLAIN])
        # A new list, never changed in place: the engine may be iterating over the old one.
        self._plain_hooks[conn] = [h for h in hooks if getattr(h, "__self__", None) is not monitor]

    def _frame(self, record: Record) -> None:
        frame = self.conns.frame(record)
        if self._links is not None:
            self._links.frame(frame)
        kind = frame_class(frame)
        if kind is _PLAIN:
            hooks = self._plain_hooks.get(frame.conn, self._frame_hooks[_PLAIN])
        else:
            hooks = self._frame_hooks[kind]
        for handler in hooks:
            handler(frame)
        self.conns.after_frame(frame)

    def _conn(self, record: Record) -> None:
        event = record.get("event")
        if event == "open":
            self._call("on_open", self.conns.opened(record))
        elif event == "half_close":
            self.conns.half_closing(record)
        elif event == "close":
            conn = self.conns.closing(record)
            self._call("on_end", conn)
            self.conns.forget(conn)
            self._plain_hooks.pop(conn, None)

    def _wire_error(self, record: Record) -> None:
        if "tap" not in record:
            return  # the frame proxy's note about a peer's bytes: the taps saw them too
        self._call("on_wire_error", self.conns.wire_error(record), record)

    def _telemetry(self, record: Record) -> None:
        parsed, ended = self.episodes.parse(record)
        if ended is not None:
            self._call("on_episode_end", ended)
        hooks = self._plain_telemetry_hooks if parsed.plain_media else self._telemetry_hooks
        for handler in hooks.get(parsed.kind, ()):
            handler(parsed)
        self.episodes.update(parsed)

    def _simple(self, hook: str) -> Callable[[Record], None]:
        def handle(record: Record) -> None:
            self._call(hook, record)

        return handle

    # --- output -------------------------------------------------------------

    def finish(self) -> list[Verdict]:
        """Drain the sequencer, settle what is pending, and give every verdict."""
        if not self._finished:
            self._finished = True
            for ready in self.sequencer.drain():
                self._process(ready)
            # Timers due after the last record stay unrun: the trace ended before they were due.
            self._run_timers(self.now)
            for conn in list(self.conns.live.values()):
                self._call("on_end", conn)
            for episode in self.episodes.remaining():
                self._call("on_episode_end", episode)
            self._call("on_finish", self.now)
        return [
            self.monitors[r].verdict()
            if r in self.monitors
            else not_observed(r, f"no monitor for {r}")
            for r in self.order
        ]

    def window(self) -> list[Verdict]:
        """Each monitor's verdict over what it judged since the last window."""
        return [m.window() for m in self.monitors.values()]


def check_records(
    records: Iterable[Record],
    requested: Mapping[str, Mapping[str, Any] | None] | None = None,
    timings: Timings = DEFAULT_TIMINGS,
) -> list[Verdict]:
    """Feed every record, then finish: the batch form of the engine."""
    return Engine(requested, timings).feed_all(records).finish()
