"""RECON: after DISCONNECTED, a bounded jittered backoff and a brand-new session."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.members import (
    CONNECTION_KIND,
    DECODER_CREATE,
    DISCONNECTED,
    HELLO_KIND,
    SOCKET_CONNECTED,
    STATE_KIND,
)
from harness.checks.monitor import Monitor, MonitorContext, monitor
from reference.protocol.causes import FINAL_CAUSES, Cause
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import ConnectionAction, RecordKind

CLOSED_ACTION = ConnectionAction.CLOSED.value  # bound once: read per record
HANDSHAKE = (ViewerState.SOCKET_CONNECTED, ViewerState.AUTHENTICATING, ViewerState.NEGOTIATING)
# Reconnects with one identical delay before the lack of jitter counts as a violation.
SAME_DELAYS = 3


@dataclass(slots=True)
class _Reconnecting:
    since: float  # the DISCONNECTED, or the last failed connect attempt after it
    delays: deque[float] = field(default_factory=lambda: deque(maxlen=SAME_DELAYS))
    reported_jitter: bool = False


@dataclass(slots=True)
class _Fresh:
    """A reconnect's episode: its handshake so far and whether it decoded without a decoder."""

    states: list[ViewerState] = field(default_factory=list)
    decoder: bool = False
    reported: bool = False


@monitor
class Recon1(Monitor):
    """RECON-1: reconnect with bounded, jittered backoff, a whole new handshake, no old state.

    Read from the Viewer's telemetry. After a DISCONNECTED whose cause is not final
    (`auth_failed` and `viewer_stopped` are), each connect attempt, failed
    (`connection` record with action `failed`) or not (the next SOCKET_CONNECTED),
    must come after a delay of at least half of `reconnect_initial` (the jitter's
    lower bound, 7.8) less 10 ms of timer slack and at most `reconnect_max` plus the
    tolerance (section 10). The delay is measured from the previous failed attempt,
    or from the earliest evidence of the disconnect: the Viewer's own close as its
    tap saw it (the tap's `half_close` of the Viewer's side), its `connection`
    record with action `closed`, or its DISCONNECTED record, whichever is first
    (7.8: the Viewer enters DISCONNECTED and closes the socket before it schedules
    the reconnect, but may write the records later). Scheduling and loopback
    jitter (what section 10's tolerance absorbs) only make a timer fire and a
    connect show later, never earlier, and the evidence measured from is at or
    before the backoff's start: so the lower bound takes only the timer slack and
    the upper bound the tolerance. Three
    consecutive reconnects after exactly the same delay (to the millisecond) show no
    jitter. The reconnected episode must go SOCKET_CONNECTED, AUTHENTICATING,
    NEGOTIATING in that order, and must not pass a frame to a decoder before
    creating a new one. After a DISCONNECTED with cause `auth_failed` the Viewer must
    not connect again on its own (PROTOCOL.md 5.1): a SOCKET_CONNECTED in the same
    telemetry with no new `hello` record before it (a new Viewer instance, started by
    its user, writes one) is a violation. Evidence: the delay or the step that broke
    the rule.
    """

    requirement = "RECON-1"
    checks = "reconnect(s)"
    telemetry_kinds = frozenset(
        {RecordKind.STATE, RecordKind.CONNECTION, RecordKind.DECODER, RecordKind.FRAME,
         RecordKind.HELLO}
    )

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.ceiling = self.timings.reconnect_max + self.tolerance
        self.floor = self.timings.reconnect_initial * 0.5 - 0.01
        self.waiting: dict[str, _Reconnecting] = {}
        self.fresh: dict[Episode, _Fresh] = {}
        self.refused: dict[str, float] = {}  # viewer -> its DISCONNECTED for AUTH_FAIL
        self.connected: dict[str, float] = {}  # viewer -> its last SOCKET_CONNECTED
        self.closed: dict[str, float] = {}  # viewer -> its `closed` record since then

    def _disconnected_at(self, rec: TelemetryRecord) -> float:
        """The earliest evidence of the disconnect that `rec` (DISCONNECTED) reports."""
        since = min(rec.t, self.closed.pop(rec.viewer, rec.t))
        connected = self.connected.get(rec.viewer)
        conn = self.ctx.viewer_conn(rec.viewer)
        own = conn.own_close if conn is not None else None
        if connected is not None and own is not None and connected <= own:
            since = min(since, own)  # its close on this connection, not on an older one
        return since

    def _delay(self, rec: TelemetryRecord, waiting: _Reconnecting, what: str) -> None:
        self.check()
        delay = rec.t - waiting.since
        if delay < self.floor or not self.in_time(waiting.since, self.ceiling, rec.t):
            self.fail(
                rec.t,
                f"{what} {delay:.2f} s after the previous attempt "
                f"(backoff bounds {self.floor:.2f}-{self.ceiling:.2f} s)",
                rec.viewer,
            )
        waiting.delays.append(round(delay, 3))
        same = len(waiting.delays) == SAME_DELAYS and len(set(waiting.delays)) == 1
        if same and not waiting.reported_jitter:
            waiting.reported_jitter = True
            self.fail(
                rec.t, f"{SAME_DELAYS} reconnects all after exactly {delay:.3f} s: no jitter",
                rec.viewer,
            )

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        waiting = self.waiting.get(rec.viewer)
        if rec.kind is CONNECTION_KIND and rec.action == CLOSED_ACTION:
            self.closed.setdefault(rec.viewer, rec.t)
            return
        if rec.kind is CONNECTION_KIND and rec.action == ConnectionAction.FAILED.value:
            if waiting is not None:
                self._delay(rec, waiting, "connect attempt")
                waiting.since = rec.t
            return
        if rec.kind is HELLO_KIND:
            self.refused.pop(rec.viewer, None)  # a new Viewer instance: its user started it
            return
        if rec.is_state(DISCONNECTED):
            if rec.cause is Cause.AUTH_FAILED:
                self.check()
                self.refused[rec.viewer] = rec.t
            if rec.cause in FINAL_CAUSES:
                self.waiting.pop(rec.viewer, None)
            else:
                kept = waiting.delays if waiting is not None else None
                self.waiting[rec.viewer] = _Reconnecting(self._disconnected_at(rec))
                if kept is not None:
                    self.waiting[rec.viewer].delays = kept
            return
        episode = rec.episode
        if rec.is_state(SOCKET_CONNECTED) and rec.viewer in self.refused:
            refused = self.refused.pop(rec.viewer)
            self.fail(rec.t, f"connected again on its own {rec.t - refused:.2f} s after "
                      "AUTH_FAIL (5.1: no automatic reconnect)", rec.viewer)
        if rec.is_state(SOCKET_CONNECTED):
            self.connected[rec.viewer] = rec.t
            self.closed.pop(rec.viewer, None)
            if waiting is not None and episode is not None:
                self._delay(rec, waiting, "reconnected")
                self.fresh[episode] = _Fresh([SOCKET_CONNECTED])
            return
        fresh = self.fresh.get(episode) if episode is not None else None
        if fresh is None or fresh.reported:
            return
        if rec.kind is STATE_KIND and rec.state is not None:
            if len(fresh.states) < len(HANDSHAKE) and rec.state is not DISCONNECTED:
                fresh.states.append(rec.state)
                if tuple(fresh.states) != HANDSHAKE[: len(fresh.states)]:
                    fresh.reported = True
                    steps = " -> ".join(s.value for s in fresh.states)
                    self.fail(rec.t, f"reconnect skipped the handshake: {steps}", rec.viewer)
        elif rec.decoder_action is DECODER_CREATE:
            fresh.decoder = True
        elif rec.decodes and not fresh.decoder:
            fresh.reported = True
            self.fail(rec.t, "decoded before creating a new decoder", rec.viewer)

    def on_episode_end(self, episode: Episode) -> None:
        self.fresh.pop(episode, None)
