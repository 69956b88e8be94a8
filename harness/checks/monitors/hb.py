"""HB: heartbeats every interval, and a silent peer declared dead after the timeout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import Conn, WireFrame
from harness.trace import P2V, V2P
from reference.protocol.causes import Cause
from reference.protocol.messages import Heartbeat
from reference.protocol.states import ViewerState


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
    tolerance after AUTH_OK (7.7: "from AUTH_OK on"). A connection that ends sooner
    is not judged for it. Evidence: each gap out of bounds, or the missing first beat.
    """

    requirement = "HB-1"
    checks = "heartbeat interval(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.interval = self.timings.heartbeat_interval
        self.beats: dict[tuple[Conn, str], _Beats] = {}

    def _judged(self, conn: Conn, direction: str) -> bool:
        return conn.judges_primary if direction == P2V else conn.judges_viewer

    def on_frame(self, frame: WireFrame) -> None:
        if not isinstance(frame.message, Heartbeat) or not self._judged(frame.conn, frame.dir):
            return
        beats = self.beats.setdefault((frame.conn, frame.dir), _Beats())
        previous = beats.last if beats.last is not None else frame.conn.authenticated_at
        if previous is not None:
            self.check()
            gap = frame.t - previous
            first = beats.last is None
            late = gap > self.interval + self.tolerance
            if late or (not first and gap < self.interval - self.tolerance):
                what = "first heartbeat after AUTH_OK" if first else "heartbeat gap"
                self.fail(
                    frame.t,
                    f"{_sender(frame.dir)} {what} {gap:.2f} s "
                    f"(expected {self.interval:g} ± {self.tolerance:g} s)",
                    frame.where(),
                )
        beats.last = frame.t
        beats.count += 1

    def on_end(self, conn: Conn) -> None:
        ok = conn.authenticated_at
        end = conn.end
        for direction in (P2V, V2P):
            beats = self.beats.pop((conn, direction), None)
            if beats is not None or ok is None or end is None or not self._judged(conn, direction):
                continue
            if end - ok > self.interval + self.tolerance:
                self.check()
                self.fail(ok, f"no {_sender(direction)} heartbeat at all after AUTH_OK", conn.where)


@dataclass(eq=False, slots=True)
class _Silence:
    """The last frame received from the peer on one connection, and the timer watching it."""

    conn: Conn
    last: float
    armed_for: float | None = None
    reported: bool = False


@monitor
class Hb2(Monitor):
    """HB-2: `heartbeat_timeout` (6 s) of silence from the peer means the connection is dead.

    The Primary side: on a Primary-side tap, once the Viewer has sent nothing for the
    timeout, the Primary must close the connection; the close must come at most the
    timeout plus the tolerance after the Viewer's last frame (a connection still open
    then is a FAIL at that moment). The Viewer side: on a Viewer-side tap, once the
    Primary has sent nothing for the timeout, the Viewer must close (the tap records
    its close) within the same bound; with telemetry, a DISCONNECTED whose cause is
    `heartbeat_timeout` must not come before the timeout minus the tolerance since
    the last frame from the Primary. Only authenticated connections are judged (the
    auth timeout, AUTH-3, comes first), and not a connection whose stream broke (a
    wire error: FRAME-2's). Silence is measured between whole frames on the tap: a
    peer trickling a partial frame is bounded by the frame deadline, not by this rule,
    and a scenario that trickles does not expect HB-2. Evidence: the silence and when
    the connection ended.
    """

    requirement = "HB-2"
    checks = "silence(s) and heartbeat-timeout disconnect(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.timeout = self.timings.heartbeat_timeout
        self.watch: dict[tuple[Conn, str], _Silence] = {}

    def _peer_direction(self, conn: Conn) -> list[str]:
        """The directions whose silence this tap judges: the peer's toward the judged side."""
        out = []
        if conn.judges_primary:
            out.append(V2P)  # the Primary judges the Viewer's silence
        if conn.judges_viewer:
            out.append(P2V)  # the Viewer judges the Primary's silence
        return out

    def on_frame(self, frame: WireFrame) -> None:
        conn = frame.conn
        if frame.dir not in self._peer_direction(conn):
            return
        key = (conn, frame.dir)
        silence = self.watch.get(key)
        if silence is None:
            silence = self.watch[key] = _Silence(conn, frame.t)
        silence.last = frame.t
        if conn.authenticated_at is not None and silence.armed_for is None:
            self._arm(key, silence)

    def _arm(self, key: tuple[Conn, str], silence: _Silence) -> None:
        silence.armed_for = silence.last
        self.ctx.at(silence.last + self.timeout + self.tolerance, partial(self._due, key))

    def _due(self, key: tuple[Conn, str], now: float) -> None:
        silence = self.watch.get(key)
        if silence is None:
            return
        if silence.last != silence.armed_for:
            self._arm(key, silence)  # traffic since: watch the newest silence
            return
        if silence.conn.wire_errors:
            return  # a broken stream is FRAME-2's to judge
        self.check()
        silence.reported = True
        judged = "Primary" if key[1] == V2P else "Viewer"
        self.fail(
            silence.last,
            f"peer silent since {silence.last:.2f}; the {judged} still had the connection open "
            f"{self.timeout + self.tolerance:.1f} s later (timeout {self.timeout:g} s)",
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
                self.note(conn.closed, f"closed {quiet:.2f} s after the peer fell silent",
                          conn.where)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        if not rec.is_state(ViewerState.DISCONNECTED) or rec.cause is not Cause.HEARTBEAT_TIMEOUT:
            return
        conn = self.ctx.viewer_conn(rec.viewer)
        silence = self.watch.get((conn, P2V)) if conn is not None else None
        if silence is None:
            return
        self.check()
        quiet = rec.t - silence.last
        if quiet < self.timeout - self.tolerance:
            self.fail(
                rec.t,
                f"declared the Primary dead after only {quiet:.2f} s of silence "
                f"(timeout {self.timeout:g} s)",
                rec.viewer,
            )
