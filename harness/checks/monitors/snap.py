"""SNAP-1, SNAP-2: the stream-state snapshot a Primary owes every version-2 connection."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import Deferred
from harness.checks.wire import Conn, WireFrame
from harness.trace import Record
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.grammar import parse_control_text
from reference.protocol.messages import AuthOk, Heartbeat, Session, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind


@dataclass(slots=True)
class _Awaiting:
    since: float
    session: bool = False


@monitor
class Snap1(Monitor):
    """SNAP-1: right after AUTH_OK and SESSION comes STREAM_STATE, before any stream message.

    Read on every Primary-side connection that speaks version 2 (the Primary sent
    PROTO|version=2 or higher), in wire order: between the AUTH_OK and the first
    STREAM_STATE the Primary may send only SESSION and HEARTBEAT, and SESSION must
    come before the STREAM_STATE. A STREAM_STATE whose fields do not parse (a state
    name for the code, say) still is the snapshot here: its form is STATE-1's. A
    connection that ends with no snapshot fails
    unless it ended within the tolerance of its AUTH_OK with nothing else sent.
    Evidence: what came before the snapshot, or the missing snapshot; for a PASS,
    each snapshot.
    """

    requirement = "SNAP-1"
    checks = "authenticated version-2 connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.awaiting: dict[Conn, _Awaiting] = {}

    def on_frame(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not (frame.from_primary and conn.judges_primary):
            self.skip_plain_media(frame)  # plain media is the Primary's: not judged here
            return
        if isinstance(message, AuthOk) and conn.authenticated_at is None:
            if conn.speaks_v2:
                self.awaiting[conn] = _Awaiting(frame.t)
            return
        waiting = self.awaiting.get(conn)
        if waiting is None:
            if conn.authenticated_at is not None:
                self.skip_plain_media(frame)  # no snapshot awaited, and none will be
            return
        if isinstance(message, Session):
            waiting.session = True
        elif isinstance(message, Heartbeat):
            pass
        elif isinstance(message, StreamStateMessage) or (
            frame.malformed and _names_stream_state(frame)
        ):
            del self.awaiting[conn]
            self.check()
            if not waiting.session:
                self.fail(frame.t, "snapshot not preceded by SESSION", frame.where())
            else:
                self.note(frame.t, f"snapshot {frame.text}", frame.where())
        else:
            del self.awaiting[conn]
            self.check()
            self.fail(frame.t, f"{frame.label} sent after AUTH_OK before the snapshot",
                      frame.where())

    def on_end(self, conn: Conn) -> None:
        waiting = self.awaiting.pop(conn, None)
        end = conn.end
        if waiting is None or end is None or end - waiting.since <= self.tolerance:
            return
        self.check()
        self.fail(waiting.since, "no STREAM_STATE after AUTH_OK", conn.where)


def _names_stream_state(frame: WireFrame) -> bool:
    """A control text the core refuses that still names STREAM_STATE (STATE-1 judges it)."""
    try:
        return parse_control_text(frame.text).name == StreamStateMessage.NAME
    except RemoteProtocolError:
        return False


Truth = tuple[StreamState, int]


def _speaks_v2(conn: Conn) -> bool:
    """Version 2 on this connection: PROTO 2 sent, to a Viewer that said version 2."""
    version = conn.viewer_version
    return conn.speaks_v2 and (version is None or version >= 2)


class _History:
    """The values a truth took recently: enough to answer "what held in [t - a, t + b]"."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.items: deque[tuple[float, Truth, str]] = deque()

    def add(self, t: float, value: Truth, source: str = "") -> None:
        self.items.append((t, value, source))
        while len(self.items) > 1 and self.items[1][0] <= t - self.keep:
            self.items.popleft()

    def known_at(self, t: float) -> bool:
        """Whether a value was recorded at or before `t` (and is still remembered)."""
        return any(when <= t for when, _, _ in self.items)

    def held(
        self, start: float, end: float, besides: str = "", *, since_start: bool = False
    ) -> set[Truth]:
        """The value at `start` and every value taken in (start, end], not from `besides`.

        With `since_start`, empty when no value was held at `start`: values taken
        only later cannot say what held before them.
        """
        held: set[Truth] = set()
        before: Truth | None = None
        for t, value, source in self.items:
            if besides and source == besides:
                continue
            if t <= start:
                before = value
            elif t <= end:
                held.add(value)
        if before is None:
            return set() if since_start else held
        held.add(before)
        return held


# Timeline actions that end a Primary's life (scenario actions, harness/scenarios/runner.py).
PRIMARY_LIFE_ACTIONS = frozenset({"restart_primary", "kill_primary", "primary_started"})


@monitor
class Snap2(Monitor):
    """SNAP-2: the snapshot is the truth at that instant.

    Each snapshot (the first STREAM_STATE after AUTH_OK on a Primary-side
    connection that speaks version 2, as SNAP-1 reads it; a version-1 connection's
    STREAM_STATEs are LEGACY-2's and count neither as snapshot nor as truth) is
    compared with the stream's state and epoch around the time it was sent: the
    value held at `t - tolerance` or any value taken up to `t + tolerance` (the
    Primary's records and its broadcasts to other connections are written a little
    before or after the snapshot it sends). The other connections' announcements
    count only where one of them held at `t - tolerance`: values announced only
    after that cannot refute the snapshot (a change may follow a true snapshot
    within the tolerance, and another connection's first announcement is itself a
    snapshot). The truth is the
    Primary's own report (`primary` records, what=state) when the trace has one;
    otherwise what the Primary announced on its other connections. A report the
    harness sampled (`sampled`: an external Primary's GET /status, asked at
    intervals) can miss a state held for less than an interval, so there what was
    announced on the other connections counts as truth too; samples that begin only
    after a snapshot can bear it out, never refute it (the state before the first
    sample was never seen). A Primary stopped or restarted by the scenario starts a
    new history: what it reported before describes a stream that is gone. A
    snapshot with no truth to compare against is not judged. Evidence: the snapshot
    against the truth.
    """

    requirement = "SNAP-2"
    checks = "snapshot(s) compared with the stream's state"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        keep = 4 * self.tolerance + 1.0
        self.reported = _History(keep)  # the Primary's own records
        self.announced = _History(keep)  # STREAM_STATE on any Primary-side connection
        self.awaiting: set[Conn] = set()  # authenticated, snapshot not yet sent
        self.sampled = False  # the Primary's reports are samples, not every change

    def on_primary(self, record: Record) -> None:
        if record.get("what") != "state":
            return
        try:
            state = StreamState[str(record.get("stream_state"))]
        except KeyError:
            return
        self.sampled = self.sampled or bool(record.get("sampled"))
        self.reported.add(float(record["t"]), (state, int(record.get("epoch", 0))))

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not (frame.from_primary and conn.judges_primary):
            return
        if isinstance(message, AuthOk) and conn.authenticated_at is None:
            if _speaks_v2(conn):
                self.awaiting.add(conn)
            return
        if not isinstance(message, StreamStateMessage) or not _speaks_v2(conn):
            return
        said = (message.state, message.epoch)
        if conn in self.awaiting:
            self.awaiting.discard(conn)
            self.ctx.at(frame.t + self.tolerance, partial(self._compare, frame.t, said, conn.where))
        self.announced.add(frame.t, said, conn.where)

    def on_action(self, record: Record) -> None:
        # A Primary stopped or started anew: what it reported and announced before
        # describes a stream that is gone; the new one's truth comes with its first report.
        if record.get("action") in PRIMARY_LIFE_ACTIONS:
            self.reported = _History(self.reported.keep)
            self.announced = _History(self.announced.keep)

    def _compare(self, t: float, said: Truth, where: str, now: float) -> None:
        start, end = t - self.tolerance, t + self.tolerance
        if self.reported.items:
            held = self.reported.held(start, end)
            if self.sampled and said not in held and not self.reported.known_at(t):
                # No sample of this Primary's life before the snapshot: a state it held until
                # the first sample (starting up, say) was never seen. Such samples can bear the
                # snapshot out, never refute it.
                held = set()
            if self.sampled:
                held |= self.announced.held(start, end, where, since_start=True)
        else:
            held = self.announced.held(start, end, where, since_start=True)
        if not held:
            return
        self.check()
        text = f"snapshot {said[0].name} epoch {said[1]}"
        if said in held:
            self.note(t, f"{text} = the stream's state", where)
            return
        truths = " or ".join(f"{s.name} epoch {e}" for s, e in sorted(held))
        self.fail(t, f"{text}, the stream was {truths}", where)

    def on_end(self, conn: Conn) -> None:
        self.awaiting.discard(conn)


@monitor
class Snap3(Monitor):
    """SNAP-3: after a (re)connect the Viewer does not enter STREAMING before the snapshot.

    Read from the Viewer's telemetry against its own tap, per episode: the
    episode's first `state` record entering STREAMING on a version-2 connection
    (PROTO version 2, or a STREAM_STATE, on the tap) must come at or after the
    time the tap delivered the connection's first STREAM_STATE (the tap stamps a
    frame before the Viewer can read it, so the snapshot's tap time is a lower
    bound; no window). Version-1 connections are LEGACY-1's; without a Viewer tap
    the rule is not judged (a record's `server_state` alone is VER-4's reading).
    That a Viewer which got the snapshot does reach STREAMING is EVT-1's reading.
    Evidence: the entry and the snapshot's time, or its absence.
    """

    requirement = "SNAP-3"
    checks = "(re)connection(s) reaching STREAMING"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = ctx.shared_links()
        self.deferred = Deferred(self)
        self.judged: set[str] = set()  # viewers whose current episode was judged

    def on_episode_end(self, episode: Episode) -> None:
        self.judged.discard(episode.viewer)

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or not rec.is_state(ViewerState.STREAMING):
            return
        if rec.viewer in self.judged:
            return
        self.judged.add(rec.viewer)
        link = self.links.of(rec.viewer, episode.start)
        if link is None or link.speaks_v2 is False:
            return
        t = rec.t

        def rule() -> str | None:
            if link.snapshot_at is not None and link.snapshot_at <= t:
                return None
            if link.snapshot_at is None:
                return "entered STREAMING with no snapshot delivered"
            return f"entered STREAMING {link.snapshot_at - t:.3f} s before the snapshot arrived"

        self.deferred.judge(t, episode.where, rule)
