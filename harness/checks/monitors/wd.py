"""WD: the Viewer's stall watchdog, its keyframe retries, and recovery by keyframe."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.members import (
    ACTIVE,
    DECODED_KIND,
    KEYFRAME_REQUEST_KIND,
    NEGOTIATING,
    RECONFIGURING,
    RECOVERING,
    RENDERED_KIND,
    SOCKET_CONNECTED,
    STATE_KIND,
    STREAMING,
    VIDEO_NAME,
    VIEWER_TAP,
)
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import ANY_VIEWER, Conn, WireFrame
from reference.protocol.causes import Cause
from reference.protocol.messages import ReqKeyframe, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind

WATCHED_STATES = frozenset({ViewerState.STREAMING, ViewerState.RECONFIGURING})


def is_progress(rec: TelemetryRecord, episode: Episode) -> bool:
    """A picture of the current epoch decoded, rendered, or a VIDEO frame passed to decode."""
    if rec.epoch is None or rec.epoch != episode.epoch:
        return False
    if rec.kind in (DECODED_KIND, RENDERED_KIND):
        return True
    return rec.decodes and rec.record.get("type") == VIDEO_NAME


def viewer_of(conn: Conn) -> str:
    return conn.viewer or ANY_VIEWER


@dataclass(slots=True)
class _Watchdog:
    """The stall timer as PROTOCOL.md 7.6 runs it: armed time since the last restart."""

    used: float = 0.0  # armed seconds since the last restart, before the current arming
    armed_since: float | None = None  # None while disarmed (suspended)
    started: bool = False  # restarted at least once this episode
    reported: bool = False  # a missed stall was reported since the last restart
    wire_active: bool | None = None  # None: no version-2 wire seen for this Viewer
    wire_epoch: int | None = None
    awaiting_request: float | None = None
    watched: bool = False  # this episode had an armed period with progress: a period checked

    def quiet(self, now: float) -> float:
        return self.used + (now - self.armed_since if self.armed_since is not None else 0.0)

    def restart(self, t: float, armed: bool) -> None:
        self.used, self.started, self.reported = 0.0, True, False
        self.armed_since = t if armed else None

    def sync(self, t: float, armed: bool) -> None:
        """Suspend or resume (never reset) as the watchdog's arming changes."""
        if armed and self.armed_since is None:
            self.armed_since = t
        elif not armed and self.armed_since is not None:
            self.used += t - self.armed_since
            self.armed_since = None


@monitor
class Wd1(Monitor):
    """WD-1: no decodable frame for 1.5-2.5 s while ACTIVE puts the Viewer in RECOVERING.

    The stall timer is followed as PROTOCOL.md 7.6 defines it, from the Viewer's
    telemetry and its tap. It is armed while the Viewer is STREAMING or RECONFIGURING
    and the server is ACTIVE (the last STREAM_STATE its tap delivered; without a tap,
    the server state of its own records; against a version-1 Primary, which sends
    none, while STREAMING by inference). It only counts armed time: leaving ACTIVE
    suspends it and ACTIVE again resumes it with the time that was left. Progress
    restarts it: STREAM_ACCEPTED, entering STREAMING, a new epoch (on the tap: the
    Viewer learns it a moment later), and every picture of the current epoch
    (`decoded`, `rendered`, or a VIDEO frame passed to decode, keyframes included).
    Entering RECOVERING must come when the armed time since the last restart is
    within `stall_window` (Timings: 1.5-2.5 s) widened by the tolerance, and a
    REQ_KEYFRAME (on the tap, or a `keyframe_request` record without one) must follow
    within the tolerance. A Viewer whose armed time since the last restart exceeds the
    window's upper bound plus the tolerance, at any later record of its own, any
    delivered STREAM_STATE or the end of its episode, missed the stall. Entering
    RECOVERING with cause `client_background` (PROTOCOL.md 7.12) is no stall: it is
    not measured and no request is expected with it, and the timer waits for the next
    restart. Evidence: the measured stall.
    """

    requirement = "WD-1"
    checks = "stall detection(s) and armed period(s)"
    telemetry_kinds = frozenset(
        {RecordKind.STATE, RecordKind.DECODED, RecordKind.RENDERED, RecordKind.FRAME,
         RecordKind.KEYFRAME_REQUEST}
    )

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.low, self.high = self.timings.stall_window
        self.dogs: dict[str, _Watchdog] = {}
        self.episodes: dict[str, Episode] = {}

    def _armed(
        self, state: ViewerState, server: StreamState | None, dog: _Watchdog
    ) -> bool:
        if state not in WATCHED_STATES:
            return False
        if dog.wire_active is not None:
            return dog.wire_active
        if server is None:
            # No server state at all: a version-1 Primary, armed once inference streams.
            return state is STREAMING
        return server is ACTIVE

    def _armed_now(self, episode: Episode, dog: _Watchdog) -> bool:
        return self._armed(episode.state, episode.server_state, dog)

    def _missed(self, episode: Episode, dog: _Watchdog, now: float) -> None:
        if not dog.started or dog.reported:
            return
        quiet = dog.quiet(now)
        if not self.in_time(now - quiet, self.high + self.tolerance, now):
            dog.reported = True
            self.check()
            self.fail(
                now,
                f"{quiet:.2f} s of armed time without a decodable frame while "
                f"{episode.state.value}, and no RECOVERING (window {self.low:g}-{self.high:g} s)",
                episode.viewer,
            )

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if conn.side is not VIEWER_TAP:
            return  # a capture from elsewhere names no Viewer to tie its telemetry to
        viewer = viewer_of(conn)
        message = frame.message
        if frame.from_viewer and isinstance(message, ReqKeyframe):
            asking = self.dogs.get(viewer)
            if asking is not None:
                asking.awaiting_request = None
            return
        if not (frame.from_primary and isinstance(message, StreamStateMessage)):
            return
        dog = self.dogs.setdefault(viewer, _Watchdog())
        episode = self.episodes.get(viewer)
        if episode is not None:
            self._missed(episode, dog, frame.t)
        new_epoch = dog.wire_epoch is not None and message.epoch > dog.wire_epoch
        dog.wire_active = message.state is ACTIVE
        dog.wire_epoch = message.epoch if dog.wire_epoch is None else max(
            dog.wire_epoch, message.epoch
        )
        if episode is None:
            return
        armed = self._armed_now(episode, dog)
        if new_epoch:
            dog.restart(frame.t, armed)
        else:
            dog.sync(frame.t, armed)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        key = rec.viewer if rec.viewer in self.dogs or ANY_VIEWER not in self.dogs else ANY_VIEWER
        dog = self.dogs.get(key)
        if dog is None:  # not setdefault: that would build a watchdog for every record
            dog = self.dogs[key] = _Watchdog()
        self.episodes[key] = episode
        if rec.is_state(SOCKET_CONNECTED):
            self.dogs[key] = _Watchdog()
            return
        if rec.kind is KEYFRAME_REQUEST_KIND:
            dog.awaiting_request = None
            return
        entering_recovery = rec.is_state(RECOVERING)
        if not entering_recovery:
            self._missed(episode, dog, rec.t)
        if rec.kind is STATE_KIND and rec.state is not None:
            server = rec.server_state if "server_state" in rec.record else episode.server_state
            armed = self._armed(rec.state, server, dog)
            if entering_recovery and rec.cause is Cause.CLIENT_BACKGROUND:
                self._missed(episode, dog, rec.t)  # a stall missed before it still counts
                dog.started, dog.used, dog.armed_since = False, 0.0, None
            elif entering_recovery:
                self._stall(rec, dog)
            elif rec.state is STREAMING or (
                rec.state is RECONFIGURING and rec.previous is NEGOTIATING
            ):
                dog.restart(rec.t, armed)
            else:
                dog.sync(rec.t, armed)
        elif is_progress(rec, episode):
            armed = self._armed_now(episode, dog)
            dog.restart(rec.t, armed)
            dog.watched = dog.watched or armed

    def _stall(self, rec: TelemetryRecord, dog: _Watchdog) -> None:
        self.check()
        if dog.started:
            stall = dog.quiet(rec.t)
            early = stall < self.low - self.tolerance
            if early or not self.in_time(rec.t - stall, self.high + self.tolerance, rec.t):
                self.fail(
                    rec.t,
                    f"stall declared after {stall:.2f} s of armed time without a decodable "
                    f"frame (window {self.low:g}-{self.high:g} s)",
                    rec.viewer,
                )
            else:
                self.note(rec.t, f"stall detected after {stall:.2f} s", rec.viewer)
        dog.started, dog.used, dog.armed_since = False, 0.0, None
        dog.awaiting_request = rec.t
        self.ctx.deadline(
            rec.t, self.tolerance, partial(self._request_due, dog, rec.t, rec.viewer)
        )

    def _request_due(self, dog: _Watchdog, entered: float, viewer: str, now: float) -> None:
        if dog.awaiting_request == entered:
            dog.awaiting_request = None
            self.fail(entered, "RECOVERING without REQ_KEYFRAME", viewer)

    def on_episode_end(self, episode: Episode) -> None:
        key = episode.viewer if episode.viewer in self.dogs else ANY_VIEWER
        dog = self.dogs.get(key)
        if dog is not None and self.episodes.get(key) is episode:
            end = episode.disconnected_at or max(episode.last_t, self.ctx.now)
            if self._armed_now(episode, dog):
                self._missed(episode, dog, end)
            del self.episodes[key]
            if dog.watched:
                self.check()
                dog.watched = False


class _RunEnd(Enum):
    KEYFRAME = "keyframe"
    CLOSED = "closed"
    OPEN = "open"  # the trace ended, or the Viewer moved to another epoch


@dataclass(eq=False, slots=True)
class _WireRun:
    """Keyframe requests of one epoch on one connection, as the wire shows them."""

    conn: Conn
    epoch: int
    requests: list[float] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Recovery:
    viewer: str
    conn: Conn | None
    start: float
    requests: list[float] = field(default_factory=list)
    leave: TelemetryRecord | None = None
    settled: bool = False
    background: bool = False  # entered with cause client_background: requests start later


@monitor
class Wd2(Monitor):
    """WD-2: keyframe requests are retried every 1 s, at most 5 retries, then a reconnect.

    One recovery is the span from a `state` record entering RECOVERING to the next
    `state` record. Its requests are the REQ_KEYFRAME frames on the Viewer's own tap
    (without a tap, its `keyframe_request` records) from the tolerance before the
    span to the tolerance after it (the tap sees a request just after the Viewer sent
    it). Consecutive requests are `keyframe_retry_interval` (Timings, 1 s) apart
    within the tolerance; at most `keyframe_retries` (5) retries follow the first. If
    the span ends in DISCONNECTED with cause `keyframe_retries_exhausted`, all retries
    must have been sent and the disconnect come one interval after the last one; a
    span that ends otherwise, or is still open when the episode or trace ends, must
    not have gone an interval plus the tolerance without a request while retries were
    left. Disconnects with any other cause (heartbeat, the Primary's ERROR or BYE, a
    closed socket) end a recovery without judging its end. A recovery entered with
    cause `client_background` (PROTOCOL.md 7.12) sends nothing until the client is
    back in the foreground, which only its first request shows: it is judged from
    that request on, the same way, and one with no request yet is not judged.

    Without the Viewer's telemetry (a capture, an external Viewer that writes none)
    the rule is read from the wire alone, as PROTOCOL.md's catalogue observes it: a
    recovery is a run of REQ_KEYFRAME of one epoch on a connection, ended by a
    keyframe of that epoch or later from the Primary, by the connection closing, or by
    the trace ending. The spacing and count are judged as above; a run of all six
    requests must end with the Viewer's close one interval (± the tolerance) after the
    last; a run with retries left must not go an interval plus the tolerance without a
    request. A close sooner than that, with retries left, is not judged: the wire
    cannot tell a give-up from a heartbeat timeout or a Primary's close. Evidence: the
    spacing, count or give-up that broke the rule.
    """

    requirement = "WD-2"
    checks = "recovery episode(s)"
    reads_plain_media = False  # keyframes end a recovery; nothing else of the media
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.KEYFRAME_REQUEST})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.interval = self.timings.keyframe_retry_interval
        self.retries = self.timings.keyframe_retries
        self.open: dict[str, _Recovery] = {}
        # Requests read from one segment with the telemetry can sort just before the span.
        self.recent: dict[Conn, deque[float]] = {}
        self.runs: dict[Conn, _WireRun] = {}  # the wire's reading, for Viewers without telemetry
        self.with_telemetry: set[str] = set()

    def retry_in_time(self, previous: float, t: float) -> bool:
        """A retry one interval after the previous request, within the tolerance (late
        only by more than the CPU wait between them)."""
        return self.not_early(previous, self.interval - self.tolerance, t) and self.in_time(
            previous, self.interval + self.tolerance, t
        )

    def _recovery_for(self, conn: Conn) -> _Recovery | None:
        viewer = viewer_of(conn)
        found = self.open.get(viewer)
        if found is None and viewer == ANY_VIEWER and len(self.open) == 1:
            found = next(iter(self.open.values()))
        return found if found is not None and found.conn is conn else None

    def on_control(self, frame: WireFrame) -> None:
        message = frame.message
        if not (frame.from_viewer and isinstance(message, ReqKeyframe)):
            return
        recovery = self._recovery_for(frame.conn)
        if recovery is not None:
            self._request(recovery, frame.t)
        else:
            self.recent.setdefault(frame.conn, deque(maxlen=2)).append(frame.t)
        if frame.conn.judges_viewer:
            run = self.runs.get(frame.conn)
            if run is not None and run.epoch != message.epoch:
                self._settle_run(self.runs.pop(frame.conn), frame.t, _RunEnd.OPEN)
                run = None
            if run is None:
                run = self.runs[frame.conn] = _WireRun(frame.conn, message.epoch)
            run.requests.append(frame.t)

    def on_media(self, frame: WireFrame) -> None:
        run = self.runs.get(frame.conn)
        if run is not None and frame.is_keyframe and frame.epoch >= run.epoch:
            self._settle_run(self.runs.pop(frame.conn), frame.t, _RunEnd.KEYFRAME)

    def on_end(self, conn: Conn) -> None:
        self.recent.pop(conn, None)
        run = self.runs.pop(conn, None)
        if run is not None:
            closed = conn.closed is not None
            end = conn.closed if conn.closed is not None else self.ctx.now
            self._settle_run(run, end, _RunEnd.CLOSED if closed else _RunEnd.OPEN)

    def _settle_run(self, run: _WireRun, end: float, how: _RunEnd) -> None:
        viewer = run.conn.viewer
        read_from_telemetry = (
            viewer in self.with_telemetry if viewer is not None else bool(self.with_telemetry)
        )
        if read_from_telemetry:
            return
        self.check()
        where, requests = run.conn.where, run.requests
        for a, b in itertools.pairwise(requests):
            if not self.retry_in_time(a, b):
                self.fail(b, f"keyframe retry after {b - a:.2f} s (expected "
                          f"{self.interval:g} ± {self.tolerance:g})", where)
        if len(requests) > self.retries + 1:
            self.fail(requests[self.retries + 1],
                      f"more than {self.retries} keyframe retries", where)
        quiet = end - requests[-1]
        all_sent = len(requests) >= self.retries + 1
        if how is _RunEnd.CLOSED and all_sent:
            if abs(quiet - self.interval) > self.tolerance:
                self.fail(end, f"closed {quiet:.2f} s after the last retry (expected "
                          f"{self.interval:g})", where)
        elif not self.in_time(requests[-1], self.interval + self.tolerance, end):
            what = (
                f"still connected {quiet:.2f} s after the last retry" if all_sent
                else f"no keyframe retry for {quiet:.2f} s with "
                     f"{self.retries + 1 - len(requests)} left"
            )
            self.fail(requests[-1], what, where)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        self.with_telemetry.add(rec.viewer)
        recovery = self.open.get(rec.viewer)
        if rec.kind is KEYFRAME_REQUEST_KIND:
            if recovery is not None and recovery.conn is None:
                self._request(recovery, rec.t)
            return
        if rec.kind is not STATE_KIND:
            return
        if recovery is not None and recovery.leave is None:
            recovery.leave = rec
            self.ctx.at(rec.t + self.tolerance, partial(self._settle, recovery))
        if rec.state is RECOVERING:
            self.check()
            conn = self.ctx.viewer_conn(rec.viewer)
            recovery = self.open[rec.viewer] = _Recovery(
                rec.viewer, conn, rec.t, background=rec.cause is Cause.CLIENT_BACKGROUND
            )
            for t in self.recent.pop(conn, ()) if conn is not None else ():
                self._request(recovery, t)

    def _request(self, recovery: _Recovery, t: float) -> None:
        if recovery.settled or t < recovery.start - self.tolerance:
            return
        if recovery.leave is not None and t > recovery.leave.t + self.tolerance:
            return
        if recovery.requests:
            gap = t - recovery.requests[-1]
            if not self.retry_in_time(recovery.requests[-1], t):
                self.fail(
                    t,
                    f"keyframe retry after {gap:.2f} s (expected {self.interval:g} ± "
                    f"{self.tolerance:g})",
                    recovery.viewer,
                )
        recovery.requests.append(t)
        if len(recovery.requests) == self.retries + 2:
            self.fail(t, f"more than {self.retries} keyframe retries", recovery.viewer)

    def _settle(self, recovery: _Recovery, now: float) -> None:
        if recovery.settled:
            return
        recovery.settled = True
        if self.open.get(recovery.viewer) is recovery:
            del self.open[recovery.viewer]
        leave, requests = recovery.leave, recovery.requests
        retries = max(0, len(requests) - 1)
        if leave is not None and leave.is_state(ViewerState.DISCONNECTED):
            if leave.cause is not Cause.KEYFRAME_RETRIES_EXHAUSTED:
                return
            if len(requests) < self.retries + 1:
                self.fail(leave.t, f"gave up after only {retries} retries", recovery.viewer)
            elif abs((leave.t - requests[-1]) - self.interval) > self.tolerance:
                self.fail(
                    leave.t,
                    f"disconnected {leave.t - requests[-1]:.2f} s after the last retry "
                    f"(expected {self.interval:g})",
                    recovery.viewer,
                )
            return
        end = leave.t if leave is not None else now
        if requests and len(requests) <= self.retries and not self.in_time(
            requests[-1], self.interval + self.tolerance, end
        ):
            self.fail(
                requests[-1] + self.interval,
                f"no keyframe retry {self.interval:g} s after the last request "
                f"({retries} retries so far, still RECOVERING)",
                recovery.viewer,
            )
        elif not requests and end - recovery.start > self.tolerance and not recovery.background:
            self.fail(recovery.start, "RECOVERING without any keyframe request", recovery.viewer)

    def forget_viewer(self, viewer: str, now: float) -> None:
        recovery = self.open.get(viewer)
        if recovery is not None:
            self._settle(recovery, now)  # as on_finish would: the Viewer reports no more
        super().forget_viewer(viewer, now)

    def on_finish(self, end: float) -> None:
        for recovery in list(self.open.values()):
            self._settle(recovery, end)
        for run in list(self.runs.values()):
            self._settle_run(run, end, _RunEnd.OPEN)
        self.runs.clear()


@dataclass(slots=True)
class _Keyed:
    t: float
    epoch: int | None


@monitor
class Wd3(Monitor):
    """WD-3: a decoded keyframe of the current epoch brings RECOVERING back to STREAMING.

    Read from the Viewer's telemetry in its own order: a `decoded` record of a
    keyframe of the current epoch while the Viewer is RECOVERING and its server state
    is ACTIVE must be followed by a `state` record entering STREAMING within the
    tolerance, and that must be the next `state` record. Evidence: the keyframe and
    what followed it.
    """

    requirement = "WD-3"
    checks = "recovery/recoveries by keyframe"
    reads_plain_media = False  # keyframes decoded in RECOVERING
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.DECODED})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.pending: dict[str, _Keyed] = {}

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        keyed = self.pending.get(rec.viewer)
        if rec.kind is STATE_KIND and keyed is not None:
            del self.pending[rec.viewer]
            self.check()
            if rec.state is not STREAMING or not self.in_time(keyed.t, self.tolerance, rec.t):
                got = rec.state.value if rec.state is not None else "?"
                self.fail(keyed.t, f"keyframe decoded in RECOVERING, then {got}", rec.viewer)
            return
        recovering = episode.state is RECOVERING
        if not (recovering and rec.kind is DECODED_KIND and rec.record.get("key")):
            return
        if rec.epoch != episode.epoch or episode.server_state is not ACTIVE:
            return
        if keyed is None:
            self.pending[rec.viewer] = _Keyed(rec.t, episode.epoch)
            self.ctx.deadline(rec.t, self.tolerance, partial(self._due, rec.viewer, rec.t))

    def _due(self, viewer: str, t: float, now: float) -> None:
        keyed = self.pending.get(viewer)
        if keyed is not None and keyed.t == t:
            del self.pending[viewer]
            self.check()
            self.fail(t, "keyframe decoded in RECOVERING, still RECOVERING", viewer)
