"""HB: heartbeats every interval, and a silent peer declared dead after the timeout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import Conn, WireFrame
from harness.trace import P2V, STOP_PEERS, V2P, Record
from reference.protocol.causes import Cause
from reference.protocol.messages import AuthOk, Heartbeat
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind


@dataclass(slots=True)
class _Beats:
    last: float | None = None
    count: int = 0


def _sender(direction: str) -> str:
    return "Primary" if direction == P2V else "Viewer"


@monitor
class Hb1(Monitor):
    """HB-1: each side sends a HEARTBEAT every `heartbeat_interval` (2 s) from AUTH_OK on.

    Each side is judged on the tap next to it, before any fault reshapes its
    traffic: the Primary's heartbeats (Primary -> Viewer) on Primary-side taps, the
    Viewer's (Viewer -> Primary) on Viewer-side taps; a foreign capture judges both.
    Every gap between consecutive heartbeats in one direction must be the interval
    within the tolerance, and the first one must come at most one interval plus the
    tolerance after AUTH_OK (7.7: "from AUTH_OK on"). The open tail counts too: from
    the last heartbeat (or AUTH_OK, when none came) to the end of the connection's
    life, no more than the interval plus the tolerance may pass. That life ends at
    the first EOF of either side on the tap (a peer owes no heartbeat on a
    connection already closing), the connection's close, or the end of the trace,
    and never later than the scenario's `stop_peers` action: what follows it is the
    shutdown, so a tail is judged only up to it (a gap already too long before the
    stop still FAILs). A connection that ends within the interval plus the tolerance
    of its last beat is not judged for the tail. Evidence: each gap out of bounds,
    the missing first beat, or the open tail.
    """

    requirement = "HB-1"
    checks = "heartbeat interval(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.interval = self.timings.heartbeat_interval
        self.beats: dict[tuple[Conn, str], _Beats] = {}
        self.stopped: float | None = None  # the scenario began stopping the peers

    def on_action(self, record: Record) -> None:
        if record.get("action") == STOP_PEERS and self.stopped is None:
            self.stopped = float(record["t"])

    def _judged(self, conn: Conn, direction: str) -> bool:
        return conn.judges_primary if direction == P2V else conn.judges_viewer

    def on_control(self, frame: WireFrame) -> None:
        if not isinstance(frame.message, Heartbeat) or not self._judged(frame.conn, frame.dir):
            return
        beats = self.beats.setdefault((frame.conn, frame.dir), _Beats())
        previous = beats.last if beats.last is not None else frame.conn.authenticated_at
        if previous is not None:
            self.check()
            gap = frame.t - previous
            first = beats.last is None
            late = not self.in_time(previous, self.interval + self.tolerance, frame.t)
            low = self.interval - self.tolerance
            if late or (not first and not self.not_early(previous, low, frame.t, frame.where())):
                what = "first heartbeat after AUTH_OK" if first else "heartbeat gap"
                self.fail(
                    frame.t,
                    f"{_sender(frame.dir)} {what} {gap:.2f} s "
                    f"(expected {self.interval:g} ± {self.tolerance:g} s)",
                    frame.where(),
                )
        beats.last = frame.t
        beats.count += 1

    def _life_end(self, conn: Conn) -> float:
        """When heartbeats stopped being owed on `conn`."""
        ends = [t for t in (conn.half_closed, conn.closed) if t is not None]
        end = min(ends) if ends else max(self.ctx.now, conn.end or self.ctx.now)
        return end if self.stopped is None else min(end, self.stopped)

    def on_end(self, conn: Conn) -> None:
        ok = conn.authenticated_at
        end = self._life_end(conn) if ok is not None else None
        for direction in (P2V, V2P):
            beats = self.beats.pop((conn, direction), None)
            if ok is None or end is None or not self._judged(conn, direction):
                continue
            last = beats.last if beats is not None and beats.last is not None else ok
            tail = end - last
            if self.in_time(last, self.interval + self.tolerance, end):
                continue
            self.check()
            if beats is None:
                self.fail(ok, f"no {_sender(direction)} heartbeat at all after AUTH_OK "
                          f"({tail:.2f} s)", conn.where)
            else:
                self.fail(last, f"{_sender(direction)} sent no heartbeat for the last {tail:.2f} s "
                          f"of the connection (expected {self.interval:g} ± {self.tolerance:g} s)",
                          conn.where)


@dataclass(eq=False, slots=True)
class _Silence:
    """One direction of one connection watched for silence from its sender."""

    conn: Conn
    direction: str
    armed_for: float  # the last frame's time when the timer was set
    reported: bool = False

    @property
    def last(self) -> float:
        return self.conn.last_frame.get(self.direction, self.armed_for)


@monitor
class Hb2(Monitor):
    """HB-2: `heartbeat_timeout` (6 s) of silence from the peer means the connection is dead.

    The Primary side: on a Primary-side tap, once the Viewer has sent nothing for the
    timeout, the Primary must close the connection; the close must come at most the
    timeout plus the tolerance after the Viewer's last frame (a connection still open
    then is a FAIL at that moment). A close is the judged peer's own, read from the
    tap's `half_close` record of its side when there is one: across a partition the
    relayed connection ends only once the FIN gets through. The Viewer side: on a
    Viewer-side tap, once the Primary has sent nothing for the timeout, the Viewer must
    close (the tap records its close) within the same bound; with telemetry, a
    DISCONNECTED whose cause is `heartbeat_timeout` must not come before the timeout
    minus the tolerance since the last frame from the Primary. Watching starts at
    AUTH_OK (before it the auth timeout, AUTH-3, governs); a connection whose stream
    broke (a wire error) is FRAME-2's to judge. Silence is measured between whole frames
    on the tap: a peer trickling a partial frame is bounded by the frame deadline, not
    by this rule, and a scenario that trickles does not expect HB-2. Evidence: the
    silence and when the connection ended.
    """

    requirement = "HB-2"
    checks = "silence(s) and heartbeat-timeout disconnect(s)"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.timeout = self.timings.heartbeat_timeout
        self.watch: dict[tuple[Conn, str], _Silence] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and isinstance(frame.message, AuthOk)):
            return
        # The directions whose silence this tap judges: the peer's, toward the judged side.
        if conn.judges_primary:
            self._arm(_Silence(conn, V2P, frame.t))
        if conn.judges_viewer:
            self._arm(_Silence(conn, P2V, frame.t))

    def _arm(self, silence: _Silence) -> None:
        self.watch[(silence.conn, silence.direction)] = silence
        silence.armed_for = silence.last
        self.ctx.deadline(
            silence.armed_for, self.timeout + self.tolerance, partial(self._due, silence)
        )

    def _due(self, silence: _Silence, now: float) -> None:
        if self.watch.get((silence.conn, silence.direction)) is not silence:
            return  # the connection ended
        if silence.last != silence.armed_for:
            self._arm(silence)  # traffic since: watch the newest silence
            return
        if silence.conn.wire_errors:
            return
        self.check()
        silence.reported = True
        closed = silence.conn.own_close  # the judged peer's own close, if it came
        if closed is not None:
            self.note(
                closed,
                f"closed {closed - silence.last:.2f} s after the peer fell silent (its own "
                "close; the relayed connection ended later)",
                silence.conn.where,
            )
            return
        judged = "Primary" if silence.direction == V2P else "Viewer"
        self.fail(
            silence.last,
            f"peer silent since {silence.last:.2f}; the {judged} still had the connection open "
            f"{now - silence.last:.2f} s later (timeout {self.timeout:g} s)"
            f"{self.waited(silence.last, now)}",
            silence.conn.where,
        )

    def on_end(self, conn: Conn) -> None:
        for direction in (P2V, V2P):
            silence = self.watch.pop((conn, direction), None)
            if silence is None or silence.reported or conn.closed is None:
                continue
            if conn.authenticated_at is None:
                continue
            quiet = conn.closed - silence.last
            if quiet >= self.timeout - self.tolerance:
                self.check()
                limit = self.timeout + self.tolerance
                # The judged peer's own close, where a partition held it back from the other.
                own = conn.own_close if conn.own_close is not None else conn.closed
                if not self.in_time(silence.last, limit, own, conn.where):
                    self.fail(silence.last, f"peer silent since {silence.last:.2f}; closed only "
                              f"{own - silence.last:.2f} s later (timeout {self.timeout:g} s)"
                              f"{self.waited(silence.last, own)}", conn.where)
                    continue
                self.note(conn.closed, f"closed {quiet:.2f} s after the peer fell silent",
                          conn.where)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        if not rec.is_state(ViewerState.DISCONNECTED) or rec.cause is not Cause.HEARTBEAT_TIMEOUT:
            return
        conn = self.ctx.viewer_conn(rec.viewer)
        if conn is None or (conn, P2V) not in self.watch:
            return
        self.check()
        quiet = rec.t - conn.last_frame.get(P2V, rec.t)
        if quiet < self.timeout - self.tolerance:
            self.fail(
                rec.t,
                f"declared the Primary dead after only {quiet:.2f} s of silence "
                f"(timeout {self.timeout:g} s)",
                rec.viewer,
            )
