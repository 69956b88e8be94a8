"""STATE: state codes on the wire (the Primary) and who decides the Viewer's state (the Viewer).

The Viewer rules read its telemetry in its own order and hold it against what
its own tap delivered, causally (see `viewer_link`): the tap stamps a
Primary->Viewer frame before the Viewer can act on it, and a Viewer may lag
behind its socket by the monitor tolerance (`ctx.tolerance`, default 0.3 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.members import (
    ACTIVE,
    CSD_NAME,
    DECODED_KIND,
    DECODER_CREATE,
    DECODER_FLUSH,
    DECODER_RELEASE,
    DISCONNECTED,
    RECONFIGURING,
    RECOVERING,
    RENDERED_KIND,
    SOCKET_CONNECTED,
    STATE_KIND,
    STREAMING,
    VIDEO_NAME,
)
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import (
    Deferred,
    Delivered,
    Link,
    active_among,
    episode_of,
    viewer_key,
)
from harness.checks.wire import Conn, WireFrame
from reference.protocol.causes import Cause
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.grammar import parse_control_text
from reference.protocol.messages import (
    EVENT_STATE,
    Heartbeat,
    ReqKeyframe,
    StreamEvent,
    StreamEventMessage,
    StreamStateMessage,
)
from reference.protocol.states import DECODER_STATES, StreamState, ViewerState
from reference.protocol.telemetry import RecordKind

# Server states under which the Viewer runs no watchdog and keeps its socket (7.5).
HELD = frozenset({StreamState.PAUSED, StreamState.STOPPED})
# Causes a Viewer may report for leaving STREAMING; each needs its evidence (STATE-6).
# The Viewer lost what it renders with: its decoder, its surface, or (PROTOCOL.md 7.12)
# the whole app went to the background.
LOSS_CAUSES = frozenset({Cause.DECODER_LOST, Cause.SURFACE_LOST, Cause.CLIENT_BACKGROUND})
# A Viewer may lose its connection while PAUSED for these; any other disconnect cause
# is the Viewer giving up on a paused stream (STATE-5).
TRANSPORT_CAUSES = frozenset({
    Cause.HEARTBEAT_TIMEOUT, Cause.SERVER_CLOSED, Cause.SERVER_ERROR, Cause.SERVER_BYE,
    Cause.PROTOCOL_ERROR, Cause.VIEWER_STOPPED, Cause.SOCKET_ERROR, Cause.AUTH_FAILED,
    Cause.HANDSHAKE_TIMEOUT,
})


def _name(state: StreamState | None) -> str:
    return state.name if state is not None else "none"


def _said(items: list[Delivered]) -> str:
    return ", ".join(f"{d.state.name}/{d.epoch}" for d in items) or "no STREAM_STATE"


@monitor
class State1(Monitor):
    """STATE-1: state codes are numeric, as STREAM_STATE|<code>|epoch=N.

    Read on every Primary-side connection: every control frame from the Primary
    whose message name is STREAM_STATE must parse with the protocol core's parser
    (a numeric code 1-4 and an integer epoch). A control text that does not even
    follow the grammar is FRAME-2's, not judged here. No timing. Evidence: the
    text of each STREAM_STATE that does not parse.
    """

    requirement = "STATE-1"
    checks = "STREAM_STATE message(s)"

    def on_control(self, frame: WireFrame) -> None:
        if not (frame.from_primary and frame.conn.judges_primary and frame.is_control):
            return
        if isinstance(frame.message, StreamStateMessage):
            self.check()
            return
        if frame.message is not None:
            return
        try:
            name = parse_control_text(frame.text).name
        except RemoteProtocolError:
            return
        if name == StreamStateMessage.NAME:
            self.check()
            self.fail(frame.t, f"state message does not parse: {frame.text[:80]!r}", frame.where())


@dataclass(slots=True)
class _Watch:
    """A STREAM_STATE that obliges the Viewer to leave a state within the tolerance."""

    t: float
    message: Delivered
    viewer: str
    episode: Episode
    link: Link
    stint: float | None  # when the watched state's stint began, as known at the message


class _ViewerMonitor(Monitor):
    """Shared bookkeeping of the Viewer rules: links, and when each stint began."""

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = ctx.shared_links()
        self.deferred = Deferred(self)
        self.entered: dict[str, float] = {}  # viewer -> when the current stint began

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_episode_end(self, episode: Episode) -> None:
        self.entered.pop(episode.viewer, None)

    def stint(self, rec: TelemetryRecord, state: ViewerState) -> None:
        """Note when `state` was entered (a record that keeps the state keeps the time)."""
        episode = rec.episode
        entering = rec.kind is STATE_KIND and rec.state is state
        if entering and episode is not None and episode.state is not state:
            self.entered[rec.viewer] = rec.t

    def link_for(self, rec: TelemetryRecord) -> Link | None:
        episode = rec.episode
        return self.links.of(rec.viewer, episode.start if episode is not None else None)

    def watch_non_active(self, frame: WireFrame, state: ViewerState, why: str) -> None:
        """A delivered STREAM_STATE other than ACTIVE: the Viewer must leave `state`."""
        link = self.links.current(frame)
        if link is None or not isinstance(frame.message, StreamStateMessage):
            return
        delivered = link.last()
        if delivered is not None and delivered.state is not ACTIVE:
            self.watch(frame.t, delivered, link, state, why)

    def watch(self, frame_t: float, delivered: Delivered, link: Link, state: ViewerState,
              why: str) -> None:
        """The Viewer must not be in `state` (a stint begun before the frame) `tolerance` later."""
        viewer = viewer_key(link)
        episode = episode_of(self, viewer)
        if episode is None or episode.state not in DECODER_STATES:
            return
        self.check()
        stint = self.entered.get(episode.viewer) if episode.state is state else None
        item = _Watch(frame_t, delivered, viewer, episode, link, stint)
        self.ctx.deadline(frame_t, self.tolerance, partial(self._due, item, state, why))

    def _due(self, item: _Watch, state: ViewerState, why: str, now: float) -> None:
        episode = episode_of(self, item.viewer)
        if episode is not item.episode:
            return
        if episode.state is not state:
            left = episode.state_since  # the latest change: the leaving, or later than it
            if item.t < left:
                self.in_time(item.t, self.tolerance, left, episode.where)
            return
        since = self.entered.get(episode.viewer, episode.state_since)
        if since != item.stint and self.justified_entry(item, since):
            return
        d = item.message
        self.fail(
            item.t,
            f"still {state.value} {now - item.t:.2f} s after STREAM_STATE "
            f"{d.state.name}/{d.epoch} was delivered ({why}){self.waited(item.t, now)}",
            episode.where,
        )

    def justified_entry(self, item: _Watch, since: float) -> bool:
        """A stint begun after the watched message, justified by an ACTIVE from it on.

        Order, not time, says "after": a stint the Viewer began since the message
        was delivered is a new one; the ACTIVE must follow the message on the wire
        (or be it, for a newer epoch) and have been delivered by the stint's start.
        """
        later = item.link.delivered_since(item.message.index, since)
        return any(d.state is ACTIVE and d.epoch >= item.message.epoch for d in later)


@monitor
class State2(_ViewerMonitor):
    """STATE-2: the Primary drives the stream states; the Viewer never declares STREAMING.

    Read from the Viewer's telemetry against its own tap, causally (`viewer_link`):
    - every `state` record entering STREAMING that carries a `server_state` must say
      ACTIVE (1), and on a version-2 tap connection a STREAM_STATE ACTIVE must be
      among the states the Viewer may hold at that moment: the last one delivered
      at or before `t - tolerance`, or any delivered in `(t - tolerance, t]`;
    - a STREAM_STATE other than ACTIVE delivered while the Viewer is in a decoder
      state obliges it to be out of STREAMING `tolerance` later (a STREAMING stint
      begun after the message counts only when an ACTIVE delivered after it
      justifies it).
    An entry with no `server_state` is inference: VER-4 judges it on version 2 and
    LEGACY-1 on version 1. Without a Viewer tap only the first reading applies.
    The tolerance is `ctx.tolerance` (PROTOCOL.md section 10). Evidence: the
    entry and what the wire had said, or the message the Viewer kept STREAMING
    through.
    """

    requirement = "STATE-2"
    checks = "Primary-driven transition(s)"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def on_control(self, frame: WireFrame) -> None:
        self.watch_non_active(frame, STREAMING, "the server is not ACTIVE")

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        self.stint(rec, STREAMING)
        if not rec.is_state(STREAMING) or rec.episode is None:
            return
        said = rec.server_state
        if said is None:
            return
        if said is not ACTIVE:
            self.check()
            self.fail(rec.t, f"entered STREAMING with server state {_name(said)}", rec.viewer)
            return
        link = self.link_for(rec)
        if link is None or link.speaks_v2 is False:
            self.check()
            return
        t, tol = rec.t, self.ctx.lag(rec.t)

        def rule() -> str | None:
            held = link.candidates(t, tol)
            if active_among(held):
                return None
            return f"entered STREAMING, but the wire had delivered {_said(held)}"

        self.deferred.judge(t, rec.viewer, rule)


@dataclass(slots=True)
class _Decoded:
    csd: set[int]
    key: set[int]


@monitor
class State3(_ViewerMonitor):
    """STATE-3: STREAMING needs decoder, CSD, keyframe and ACTIVE; losing one leaves it.

    Two readings. From telemetry, in the Viewer's order: every `state` record
    entering STREAMING comes after a `decoder` create, and after a decoded CSD
    and a keyframe (a `frame` decode record with `key`, or a `decoded` record with
    `key`) of the record's epoch since the decoder was last created or flushed.
    Against the Viewer's tap: a STREAM_STATE other than ACTIVE, or one whose epoch
    is newer than the epoch the Viewer holds, delivered while it is in a decoder
    state, obliges it to be out of STREAMING `tolerance` later (`ctx.tolerance`);
    a stint begun after the message counts only when an ACTIVE of at least that
    epoch delivered after it justifies it. The server's ACTIVE at the entry is
    STATE-2's reading; the surface is not reported in telemetry and is not
    judged. Evidence: the entry and the missing condition, or the message.
    """

    requirement = "STATE-3"
    checks = "entry/entries into STREAMING and condition loss(es)"
    reads_plain_media = False  # CSD and keyframes decoded; plain pictures change no condition
    telemetry_kinds = frozenset(
        {RecordKind.STATE, RecordKind.FRAME, RecordKind.DECODED, RecordKind.DECODER}
    )

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.decoded: dict[str, _Decoded] = {}

    def on_control(self, frame: WireFrame) -> None:
        link = self.links.current(frame)
        if link is None or not isinstance(frame.message, StreamStateMessage):
            return
        delivered = link.last()
        if delivered is None:
            return
        episode = episode_of(self, viewer_key(link))
        held = episode.epoch if episode is not None else None
        if delivered.state is not ACTIVE:
            self.watch(frame.t, delivered, link, STREAMING, "the server is not ACTIVE")
        elif held is not None and delivered.epoch > held:
            self.watch(frame.t, delivered, link, STREAMING, f"newer than epoch {held}")

    def on_episode_end(self, episode: Episode) -> None:
        super().on_episode_end(episode)
        self.decoded.pop(episode.viewer, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        self.stint(rec, STREAMING)
        episode = rec.episode
        if episode is None:
            return
        if rec.is_state(SOCKET_CONNECTED):
            self.decoded.pop(rec.viewer, None)
        seen = self.decoded.setdefault(rec.viewer, _Decoded(set(), set()))
        action = rec.decoder_action
        if action in (DECODER_CREATE, DECODER_FLUSH):
            seen.csd.clear()
            seen.key.clear()
            return
        record = rec.record
        epoch = rec.epoch
        if rec.decodes and epoch is not None:
            if record.get("type") == CSD_NAME:
                seen.csd.add(epoch)
            elif record.get("key"):
                seen.key.add(epoch)
            return
        if rec.kind is DECODED_KIND and record.get("key") and epoch is not None:
            seen.key.add(epoch)
            return
        if not rec.is_state(STREAMING) or episode.state is STREAMING:
            return
        self.check()
        epoch = epoch if epoch is not None else episode.epoch
        missing = []
        if not episode.decoder:
            missing.append("no decoder")
        if epoch not in seen.csd:
            missing.append(f"no CSD of epoch {epoch} decoded")
        if epoch not in seen.key:
            missing.append(f"no keyframe of epoch {epoch} decoded")
        if missing:
            self.fail(rec.t, "entered STREAMING with " + ", ".join(missing), episode.where)


@dataclass(slots=True)
class _Flush:
    epoch: int
    flushed: bool = False
    keyed: bool = False


@monitor
class State4(Monitor):
    """STATE-4: on a new epoch the Viewer flushes, then waits for CSD and a keyframe of it.

    Read from telemetry, in the Viewer's own order (no timing window). Whenever a
    Viewer that holds a decoder adopts a newer epoch (a `state` record or a decoder
    record carrying it), it must have flushed (or created) its decoder for that
    epoch before it decodes any frame of it; after adopting it, no VIDEO frame of
    the epoch is decoded before its CSD, no non-key VIDEO frame before a keyframe,
    and no picture is `rendered` before a keyframe of the epoch was decoded.
    Evidence: the frame or picture out of order, or the decode with no flush.
    """

    requirement = "STATE-4"
    checks = "epoch change(s) seen by a Viewer"
    telemetry_kinds = frozenset(
        {RecordKind.STATE, RecordKind.FRAME, RecordKind.RENDERED, RecordKind.DECODER}
    )

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.pending: dict[str, _Flush] = {}
        self.csd: dict[str, int] = {}

    def on_episode_end(self, episode: Episode) -> None:
        self.pending.pop(episode.viewer, None)
        self.csd.pop(episode.viewer, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        viewer, epoch = rec.viewer, rec.epoch
        action = rec.decoder_action
        current = self.pending.get(viewer)
        if action in (DECODER_CREATE, DECODER_FLUSH) and epoch is not None:
            if current is None or current.epoch != epoch:
                if episode.decoder and episode.epoch is not None and epoch > episode.epoch:
                    self.check()
                current = self.pending[viewer] = _Flush(epoch)
            current.flushed = True
            return
        if rec.kind is STATE_KIND and epoch is not None and episode.decoder:
            newer = episode.epoch is not None and epoch > episode.epoch
            if newer and (current is None or current.epoch != epoch):
                self.check()
                self.pending[viewer] = _Flush(epoch)
            return
        if current is None:
            return
        record = rec.record
        if rec.decodes and epoch == current.epoch:
            kind = record.get("type")
            if not current.flushed:
                self.fail(rec.t, f"decoded {kind} of epoch {epoch} with no flush", episode.where)
                current.flushed = True
            if kind == CSD_NAME:
                self.csd[viewer] = current.epoch
            elif kind == VIDEO_NAME:
                if self.csd.get(viewer) != current.epoch:
                    self.fail(rec.t, f"VIDEO of epoch {epoch} decoded before its CSD",
                              episode.where)
                elif record.get("key"):
                    current.keyed = True
                elif not current.keyed:
                    self.fail(rec.t, f"non-key VIDEO of epoch {epoch} decoded before a keyframe",
                              episode.where)
        elif rec.kind is RENDERED_KIND and not current.keyed:
            self.fail(rec.t, f"rendered before a keyframe of epoch {current.epoch} was decoded",
                      episode.where)


@dataclass(slots=True)
class _Pause:
    t: float
    last_beat: float | None = None


@monitor
class State5(Monitor):
    """STATE-5: on PAUSED the Viewer keeps its socket, requests no keyframe, does not reconnect.

    Read on every Viewer-side tap connection, in wire order, from a STREAM_STATE
    PAUSED (or STOPPED, which PROTOCOL.md 7.5 treats "as PAUSED") until the next
    STREAM_STATE of another code: no REQ_KEYFRAME from the Viewer later than the
    tolerance after the PAUSED (a request the Viewer decided before it read the
    PAUSED can reach the tap that much later); a pause longer than three heartbeat
    intervals (Timings) has at least one HEARTBEAT from the Viewer. From the
    Viewer's telemetry: no `state` record to DISCONNECTED while its tap's last
    STREAM_STATE, delivered at least the tolerance before, was PAUSED or STOPPED,
    unless its cause is a transport or peer cause (heartbeat timeout, the server
    closed / sent ERROR or BYE, protocol error, socket error, told to stop); one
    whose cause is `server_state` fails as soon as a PAUSED it may have read (any
    in the last tolerance) was delivered, since no server state justifies leaving.
    Evidence: the request, the silent pause or the disconnect and its cause.
    """

    requirement = "STATE-5"
    checks = "pause(s)"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = ctx.shared_links()
        self.paused: dict[Conn, _Pause] = {}

    def on_control(self, frame: WireFrame) -> None:
        link = self.links.current(frame)
        if link is None:
            return
        conn, message = frame.conn, frame.message
        pause = self.paused.get(conn)
        if frame.from_primary and isinstance(message, StreamStateMessage):
            if message.state in HELD:
                if pause is None:
                    self.check()
                    self.paused[conn] = _Pause(frame.t)
            elif pause is not None:
                self._ended(conn, pause, frame.t)
            return
        if pause is None or not frame.from_viewer:
            return
        if isinstance(message, Heartbeat):
            pause.last_beat = frame.t
        elif isinstance(message, ReqKeyframe) and frame.t > pause.t + self.tolerance:
            self.fail(frame.t, f"REQ_KEYFRAME epoch {message.epoch} while PAUSED", frame.where())

    def _ended(self, conn: Conn, pause: _Pause, end: float) -> None:
        del self.paused[conn]
        limit = 3 * self.timings.heartbeat_interval
        if end - pause.t > limit and pause.last_beat is None:
            self.fail(pause.t, f"no HEARTBEAT during a {end - pause.t:.1f} s pause", conn.where)

    def on_end(self, conn: Conn) -> None:
        pause = self.paused.get(conn)
        if pause is not None:
            self._ended(conn, pause, conn.end or pause.t)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        if not rec.is_state(DISCONNECTED) or rec.cause in TRANSPORT_CAUSES:
            return
        episode = rec.episode
        link = self.links.of(rec.viewer, episode.start if episode is not None else None)
        if link is None:
            return
        # Paused for sure: the last state delivered a tolerance before. A disconnect the
        # Viewer blames on the server state needs only a PAUSED it may have read by then.
        lag = self.ctx.lag(rec.t)
        held = link.candidates(rec.t, lag)
        sure = held[:1] if held and held[0].t <= rec.t - lag else []
        blamed = held if rec.cause is Cause.SERVER_STATE else sure
        paused = [d for d in blamed if d.state in HELD]
        if paused:
            cause = rec.cause.value if rec.cause is not None else rec.record.get("cause")
            self.fail(rec.t, f"disconnected while {paused[-1].state.name} (cause {cause})",
                      rec.viewer)


@dataclass(slots=True)
class _Leave:
    t: float
    cause: Cause | None
    epoch: int | None
    since: float
    stalled: float | None  # seconds without a decodable frame, when the cause is a stall
    target: ViewerState


@monitor
class State6(_ViewerMonitor):
    """STATE-6: the server's state wins; no flapping around STREAMING.

    Three readings, from the Viewer's telemetry against its tap (causal, as in
    `viewer_link`; tolerance `ctx.tolerance`):
    - Server wins over the watchdog: no `state` record entering RECOVERING while
      the server says PAUSED or STOPPED (or anything but ACTIVE): on a Viewer tap,
      an ACTIVE must be among the states the Viewer may hold at that moment;
      without a tap, the record's `server_state` must not say otherwise.
    - Server wins over recovery: a STREAM_STATE other than ACTIVE delivered while
      the Viewer is RECOVERING obliges it to have left RECOVERING `tolerance` later.
    - No flap: a flap is a leave of STREAMING (to RECOVERING or RECONFIGURING) and
      a return to it in the same episode, where the leave has no cause the wire or
      a stall justifies. Justified are: `server_state` with a STREAM_STATE other
      than ACTIVE delivered since the stint began (or within the tolerance before
      it); `new_epoch` with a newer epoch delivered by then; `stall` with no
      decodable frame (a `frame` decode or `decoded` record) for at least the
      stall window's lower bound (Timings.stall_window, 1.5 s); `decoder_lost`,
      `surface_lost` or `client_background` (PROTOCOL.md 7.12) reported by the
      Viewer. Every STREAMING stint counts as
      a case checked: one that never leaves is no flap. Without a tap, the record's own
      `server_state` and `epoch` stand for the wire. A normal stall episode,
      STREAMING -> RECOVERING -> STREAMING, is thus two transitions.
    Evidence: the RECOVERING entry and the server's state, or the unjustified leave
    and the return.
    """

    requirement = "STATE-6"
    checks = "STREAMING/RECOVERING transition(s)"
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.FRAME, RecordKind.DECODED})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.streaming: dict[str, float] = {}  # viewer -> when its STREAMING stint began
        self.streaming_epoch: dict[str, int | None] = {}  # viewer -> the stint's epoch
        self.progress: dict[str, float] = {}  # viewer -> last decodable frame
        self.left: dict[str, _Leave] = {}

    def on_control(self, frame: WireFrame) -> None:
        self.watch_non_active(frame, RECOVERING, "the server's state wins")

    def on_episode_end(self, episode: Episode) -> None:
        super().on_episode_end(episode)
        for table in (self.streaming, self.streaming_epoch, self.progress, self.left):
            table.pop(episode.viewer, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        viewer = rec.viewer
        picture = rec.decodes and rec.record.get("type") == VIDEO_NAME
        if picture or rec.kind is DECODED_KIND:
            self.progress[viewer] = rec.t  # a CSD alone is no progress: no picture comes of it
            return
        if rec.kind is not STATE_KIND or rec.state is None:
            return
        previous = episode.state
        if rec.state is STREAMING and previous is not STREAMING:
            self.check()  # a stint watched for a flap; judged if it leaves and returns
            self.streaming[viewer] = rec.t
            self.streaming_epoch[viewer] = rec.epoch if rec.epoch is not None else episode.epoch
            left = self.left.pop(viewer, None)
            if left is not None:
                self._judge_return(rec, left)
        elif previous is STREAMING and rec.state in (RECOVERING, RECONFIGURING):
            since = self.streaming.get(viewer, episode.state_since)
            last = max(self.progress.get(viewer, since), since)
            stalled = rec.t - last if rec.cause is Cause.STALL else None
            epoch = self.streaming_epoch.get(viewer, episode.epoch)
            self.left[viewer] = _Leave(rec.t, rec.cause, epoch, since, stalled, rec.state)
        if rec.state is RECOVERING and previous is not RECOVERING:
            self.entered[viewer] = rec.t
            self._judge_recovering(rec)

    def _judge_recovering(self, rec: TelemetryRecord) -> None:
        said = rec.server_state
        if said is not None and said is not ACTIVE:
            self.check()
            self.fail(rec.t, f"entered RECOVERING while the server said {said.name}", rec.viewer)
            return
        link = self.link_for(rec)
        if link is None or link.speaks_v2 is not True:
            if said is not None:
                self.check()
            return
        t, tol = rec.t, self.ctx.lag(rec.t)

        def rule() -> str | None:
            held = link.candidates(t, tol)
            if not held or active_among(held):
                return None
            return f"entered RECOVERING while the wire said {_said(held)}"

        self.deferred.judge(t, rec.viewer, rule)

    def _judge_return(self, rec: TelemetryRecord, left: _Leave) -> None:
        why = self._unjustified(rec, left)
        if why is not None:
            gone = 1000 * (rec.t - left.t)
            self.fail(left.t, f"flap: left STREAMING for {left.target.value} ({why}) and "
                      f"returned {gone:.0f} ms later", rec.viewer)

    def _unjustified(self, rec: TelemetryRecord, left: _Leave) -> str | None:
        cause = left.cause
        if cause in LOSS_CAUSES:
            return None
        if cause is Cause.STALL:
            low = self.timings.stall_window[0]
            if left.stalled is not None and left.stalled >= low:
                return None
            return f"stall after only {left.stalled or 0:.2f} s without a decodable frame"
        link = self.link_for(rec)
        wired = link is not None and link.speaks_v2 is True
        if cause is Cause.SERVER_STATE:
            if wired and link is not None:
                start = min(left.since, left.t - self.ctx.lag(left.t))
                said = link.delivered_between(start, left.t)
                if any(d.state is not ACTIVE for d in said):
                    return None
                return f"cause server_state, but the wire delivered {_said(said)}"
            server = rec.record.get("server_state")
            return None if server not in (None, int(ACTIVE)) else "cause server_state under ACTIVE"
        if cause is Cause.NEW_EPOCH:
            if left.epoch is None:
                return None
            if wired and link is not None:
                newer = [d for d in link.states if d.t <= left.t and d.epoch > left.epoch]
                return None if newer else f"cause new_epoch, no epoch after {left.epoch} delivered"
            return None if (rec.epoch or 0) > left.epoch else "cause new_epoch, same epoch"
        named = cause.value if cause is not None else "none"
        return f"cause {named} does not justify leaving STREAMING"


@dataclass(slots=True)
class _Held:
    since: float
    disconnected: float | None = None


@monitor
class State7(_ViewerMonitor):
    """STATE-7: no decoder before the handshake completes; released on DISCONNECTED.

    Read from the Viewer's telemetry, by its own record order (no timing window):
    a `decoder` create, or a `frame` passed to the decoder, is allowed only once the
    handshake completed: the episode has reached a decoder state (RECONFIGURING,
    STREAMING, RECOVERING: STREAM_ACCEPTED received), or the Viewer's tap had
    delivered STREAM_ACCEPTED at or before the record's time (a Viewer may create
    its decoder before it writes the state record). An episode whose Viewer went
    DISCONNECTED while holding a decoder must write a `decoder` release within the
    episode, before or after the DISCONNECTED record, before its next
    SOCKET_CONNECTED. Evidence: the early create or frame, or the DISCONNECTED whose
    decoder was never released.
    """

    requirement = "STATE-7"
    checks = "decoder lifecycle event(s)"
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.FRAME, RecordKind.DECODER})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.held: dict[str, _Held] = {}

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        action = rec.decoder_action
        if action is DECODER_CREATE or rec.decodes:
            self._judge_early(rec, episode, "decoder created" if action else "frame decoded")
        if action is DECODER_CREATE:
            self.held[rec.viewer] = _Held(rec.t)
        elif action is DECODER_RELEASE:
            self.held.pop(rec.viewer, None)
        elif rec.is_state(DISCONNECTED):
            held = self.held.get(rec.viewer)
            if held is not None:
                self.check()
                held.disconnected = rec.t

    def _judge_early(self, rec: TelemetryRecord, episode: Episode, what: str) -> None:
        if episode.state in DECODER_STATES:
            self.check()
            return
        link = self.link_for(rec)
        t, state = rec.t, episode.state

        def rule() -> str | None:
            if link is not None and link.accepted_at is not None and link.accepted_at <= t:
                return None
            return f"{what} in {state.value}, before the handshake completed"

        self.deferred.judge(t, episode.where, rule)

    def on_episode_end(self, episode: Episode) -> None:
        super().on_episode_end(episode)
        held = self.held.pop(episode.viewer, None)
        if held is not None and held.disconnected is not None:
            self.fail(held.disconnected, "DISCONNECTED without releasing the decoder",
                      episode.where)


@dataclass(slots=True)
class _Unannounced:
    """A STREAM_EVENT reporting a state the connection had not been told (yet)."""

    t: float
    event: str
    state: StreamState
    epoch: int
    told: str  # what the connection had been told when the event came, for evidence
    where: str


@monitor
class State8(Monitor):
    """STATE-8: every stream-state change is announced as STREAM_STATE, never only as an event.

    Read on every Primary-side version-2 connection, in wire order (no timing): a
    STREAM_EVENT from the Primary whose name reports a change of state (PROTOCOL.md
    4.7; the protocol core's `EVENT_STATE`: every name but KEYFRAME_SENT, and names it
    does not know, which are ignored as VER-3 says) is a change the connection must be
    told as STREAM_STATE. It conforms when the last STREAM_STATE on the connection
    already names that state and the event's epoch (the order 7.11 asks for), or when
    the very next STREAM_STATE on the connection does (an event sent ahead of its
    state: the change was announced, and the order is EVT-2's reading). It is a
    violation when the next STREAM_STATE names something else, or none comes before
    the connection or the trace ends: a Viewer, which must not act on events (EVT-1),
    never learned the change. Every STREAM_STATE that changes the connection's state
    counts as a checked announcement too. Evidence: the event and the state the
    connection had been told.
    """

    requirement = "STATE-8"
    checks = "state announcement(s) and event(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.pending: dict[Conn, _Unannounced] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            return
        message = frame.message
        if isinstance(message, StreamStateMessage):
            waiting = self.pending.pop(conn, None)
            if waiting is not None and (waiting.state, waiting.epoch) != (
                message.state, message.epoch
            ):
                self._unannounced(waiting)
            if conn.stream is not None and conn.stream != (message.state, message.epoch):
                self.check()
            return
        if not isinstance(message, StreamEventMessage) or not conn.speaks_v2:
            return  # an event to a version-1 Viewer is LEGACY-2's
        try:
            state = EVENT_STATE[StreamEvent(message.event)]
        except (ValueError, KeyError):
            return  # KEYFRAME_SENT, or a name this harness does not know: no change
        self.check()
        if conn.stream == (state, message.epoch):
            return
        told = "no STREAM_STATE" if conn.stream is None else (
            f"STREAM_STATE {int(conn.stream[0])} epoch {conn.stream[1]}"
        )
        earlier = self.pending.pop(conn, None)
        if earlier is not None:
            self._unannounced(earlier)  # a second event before any STREAM_STATE
        self.pending[conn] = _Unannounced(
            frame.t, message.event, state, message.epoch, told, frame.where()
        )

    def _unannounced(self, event: _Unannounced) -> None:
        self.fail(
            event.t,
            f"STREAM_EVENT {event.event} epoch {event.epoch} reports state {int(event.state)}, "
            f"never announced as STREAM_STATE (the connection had been told {event.told})",
            event.where,
        )

    def on_end(self, conn: Conn) -> None:
        waiting = self.pending.pop(conn, None)
        if waiting is not None:
            self._unannounced(waiting)
