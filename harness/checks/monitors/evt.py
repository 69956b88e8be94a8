"""EVT: STREAM_EVENT is information; the Viewer's state follows STREAM_STATE alone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import (
    Deferred,
    Link,
    episode_of,
    viewer_key,
)
from harness.checks.wire import Conn, WireFrame
from reference.protocol.causes import Cause
from reference.protocol.messages import (
    StreamEvent,
    StreamEventMessage,
    StreamStateMessage,
    matching_events,
)
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind

LOSS_CAUSES = frozenset({Cause.DECODER_LOST, Cause.SURFACE_LOST, Cause.CLIENT_BACKGROUND})
EPOCH_DROPS = frozenset({Cause.STALE_EPOCH, Cause.FUTURE_EPOCH})


@dataclass(eq=False, slots=True)
class _Ready:
    """Everything the Viewer needs for STREAMING has been delivered to it."""

    t: float
    epoch: int
    link: Link
    generation: int


@monitor
class Evt1(Monitor):
    """EVT-1: a STREAM_EVENT alone never changes the state; without events the Viewer gets there.

    Two readings, from the Viewer's telemetry against its own tap on a version-2
    connection (causal, `viewer_link`; tolerance `ctx.tolerance`):
    - Events are not state: every `state` record that carries a `server_state`
      names a state among those the Viewer may hold at that moment: the last
      STREAM_STATE delivered at or before `t - tolerance`, or any delivered in
      `(t - tolerance, t]`. A server state the wire never said came from an event.
    - STREAM_STATE is enough (this ID owns the liveness of the snapshot; SNAP-3
      and STATE-2 judge only that STREAMING is not entered too early): once the
      tap has delivered, after STREAM_ACCEPTED, a STREAM_STATE ACTIVE of epoch N
      as the latest state, a CSD of N and then a keyframe of N, the Viewer must be
      (or have become) STREAMING within the stall window's lower bound
      (Timings.stall_window, 1.5 s: the earliest its own watchdog may call the
      stream stalled) plus the tolerance, counted from the last of the three. Not
      judged when the connection ends, the state or epoch changes, the Viewer
      reports a decoder or surface loss or disconnects before the deadline, the
      Viewer dropped frames of that epoch as not its own (`stale_epoch`,
      `future_epoch`: it held another epoch, which EPOCH-4 or NEG-2 judge), the
      Viewer dropped video of it with cause `in_background` (the client is in the
      background, PROTOCOL.md 7.12), or the Viewer writes no telemetry. A Viewer
      that ignores the snapshot and waits for an event FAILs here.
    Evidence: the record and what the wire had said, or the delivered ACTIVE, CSD
    and keyframe with the Viewer's state at the deadline.
    """

    requirement = "EVT-1"
    checks = "state transition(s) against the wire and delivered ACTIVE stream(s)"
    reads_plain_media = False  # deliveries complete at keyframes; drops are not plain
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.FRAME})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        # viewer -> the last frame it dropped as not of its epoch: (time, that frame's epoch)
        self.epoch_drop: dict[str, tuple[float, int]] = {}
        # viewer -> the last frame it dropped in the background: (time, that frame's epoch)
        self.background_drop: dict[str, tuple[float, int]] = {}
        self.links = ctx.shared_links()
        self.deferred = Deferred(self)
        self.ready: dict[str, _Ready] = {}
        self.judged: dict[str, tuple[Link, int]] = {}
        self.streaming_at: dict[str, float] = {}  # viewer -> last STREAMING entry
        self.lost_at: dict[str, float] = {}  # viewer -> last reported decoder/surface loss
        self.within = self.timings.stall_window[0] + self.tolerance

    def on_frame(self, frame: WireFrame) -> None:
        link = self.links.current(frame)
        if link is None or not frame.from_primary or link.speaks_v2 is not True:
            return
        last = link.last()
        if (
            link.ready_at is None or last is None or last.state is not StreamState.ACTIVE
            or last.epoch != link.ready_epoch
        ):
            return
        key = viewer_key(link)
        if self.judged.get(key) == (link, link.generation):
            return  # this delivery is already waiting for, or judged
        self.judged[key] = (link, link.generation)
        ready = _Ready(max(link.ready_at, last.t), last.epoch, link, link.generation)
        self.ready[key] = ready
        self.ctx.deadline(ready.t, self.within, partial(self._due, key, ready))

    def _due(self, key: str, ready: _Ready, now: float) -> None:
        if self.ready.get(key) is not ready:
            return
        del self.ready[key]
        link = ready.link
        closed = link.conn.closed
        if link.generation != ready.generation or (closed is not None and closed <= now):
            return
        episode = episode_of(self, key)
        if episode is None or episode.start > ready.t:
            return
        viewer = episode.viewer
        if episode.disconnected_at is not None or self.lost_at.get(viewer, -1.0) >= ready.t:
            return
        dropped = self.epoch_drop.get(viewer)
        recent = dropped is not None and dropped[0] >= ready.t - self.within
        if recent and dropped is not None and dropped[1] == ready.epoch:
            return  # it held another epoch when they came: the epoch rules judge that
        hidden = self.background_drop.get(viewer)
        if hidden is not None and hidden[0] >= ready.t - self.within and hidden[1] == ready.epoch:
            return  # in the background (7.12): it is not to show them
        self.check()
        entered = self.streaming_at.get(viewer)
        if entered is not None and entered >= ready.t:
            if self.in_time(ready.t, self.within, entered, episode.where):
                return
            then, was = entered, f"STREAMING only {entered - ready.t:.2f} s later"
        elif episode.state is ViewerState.STREAMING:
            return
        else:
            then, was = now, f"still {episode.state.value} {now - ready.t:.2f} s later"
        self.fail(
            ready.t,
            f"ACTIVE, CSD and keyframe of epoch {ready.epoch} delivered, {was}"
            f"{self.waited(ready.t, then)}",
            episode.where,
        )

    def on_episode_end(self, episode: Episode) -> None:
        self.streaming_at.pop(episode.viewer, None)
        self.lost_at.pop(episode.viewer, None)

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if rec.drops and rec.cause in EPOCH_DROPS and rec.epoch is not None:
            self.epoch_drop[rec.viewer] = (rec.t, rec.epoch)
            return
        if rec.drops and rec.cause is Cause.IN_BACKGROUND and rec.epoch is not None:
            self.background_drop[rec.viewer] = (rec.t, rec.epoch)
            return
        if rec.kind is not RecordKind.STATE or episode is None:
            return
        if rec.state is ViewerState.STREAMING:
            self.streaming_at[rec.viewer] = rec.t
        if rec.cause in LOSS_CAUSES:
            self.lost_at[rec.viewer] = rec.t
        said = rec.server_state
        if said is None:
            return
        link = self.links.of(rec.viewer, episode.start)
        if link is None or link.speaks_v2 is not True:
            return
        t, tol = rec.t, self.ctx.lag(rec.t)
        state = rec.state.value if rec.state is not None else rec.record.get("state")

        def rule() -> str | None:
            held = link.candidates(t, tol)
            if any(d.state is said for d in held):
                return None
            wire = ", ".join(f"{d.state.name}/{d.epoch}" for d in held) or "no STREAM_STATE"
            return f"{state} with server state {said.name}, but the wire had delivered {wire}"

        self.deferred.judge(t, rec.viewer, rule)


@dataclass(eq=False, slots=True)
class _Change:
    """A STREAM_STATE that changed the connection's state and awaits its event."""

    t: float
    state: StreamState
    epoch: int
    events: frozenset[StreamEvent]


@monitor
class Evt2(Monitor):
    """EVT-2 (SHOULD): each announced change of the stream state is followed by its event.

    Read on every Primary-side version-2 connection, in wire order (no timing): a
    STREAM_STATE after the snapshot that changes the state or epoch the connection
    was last told opens an expectation of the matching STREAM_EVENT (the protocol
    core's `matching_events`, PROTOCOL.md 4.7 and section 8: RESUMED for ACTIVE
    after PAUSED, RECONFIG_DONE for any other ACTIVE, RECONFIG_STARTED,
    ENCODER_RESTARTED or BACKEND_FALLBACK for RECONFIGURING, PAUSED and STOPPED for
    those states) with the same epoch. It is met by that event before the next
    STREAM_STATE on the connection, and missed when another STREAM_STATE comes
    first. A change still open when its connection closes or the trace ends is not
    judged (the close may have cut the event off). A repeat of the state last told is
    not a change. The rule is a SHOULD (events only inform, EVT-1): a FAIL here is a
    warning on a certificate. Evidence: the change and what followed it.
    """

    requirement = "EVT-2"
    checks = "announced state change(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.open: dict[Conn, _Change] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary and conn.speaks_v2):
            return
        message = frame.message
        if isinstance(message, StreamEventMessage):
            change = self.open.get(conn)
            if change is None or message.epoch != change.epoch:
                return
            if any(message.event == event.value for event in change.events):
                del self.open[conn]
                self.check()
            return
        if not isinstance(message, StreamStateMessage):
            return
        missed = self.open.pop(conn, None)
        if missed is not None:
            self.check()
            wanted = " or ".join(sorted(event.value for event in missed.events))
            self.fail(
                missed.t,
                f"STREAM_STATE {int(missed.state)} epoch {missed.epoch} with no {wanted} "
                "before the next STREAM_STATE",
                frame.where(),
            )
        previous = conn.stream
        if previous is None or previous == (message.state, message.epoch):
            return  # the snapshot, or a repeat: not a change
        events = matching_events(previous[0], message.state)
        self.open[conn] = _Change(frame.t, message.state, message.epoch, events)

    def on_end(self, conn: Conn) -> None:
        self.open.pop(conn, None)  # the close may have cut the event off: not judged
