"""LEGACY-2: a version-2 Primary serves a version-1 Viewer the old way."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.members import VIEWER_TAP
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import Link, episode_of, viewer_key
from harness.checks.wire import Conn, WireFrame
from reference.protocol.messages import (
    Hello,
    Proto,
    SetStream,
    StreamAccepted,
    StreamEventMessage,
    StreamRejected,
    StreamStateMessage,
)
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind

VERSION_2_ONLY = (Proto, StreamStateMessage, StreamEventMessage)


@monitor
class Legacy2(Monitor):
    """LEGACY-2: no PROTO, STREAM_STATE or STREAM_EVENT to a version-1 Viewer; it is served.

    Read on every Primary-side connection whose HELLO asked for version 1: the
    Primary sends none of PROTO, STREAM_STATE and STREAM_EVENT on it, and a
    SET_STREAM sent after AUTH_OK is answered with STREAM_ACCEPTED (or
    STREAM_REJECTED) before the connection ends, if it lasted `serve_within`
    (default 2 s) after the request. Each version-1 connection is one item checked.
    Evidence: the version-2-only message; the request never answered.
    """

    requirement = "LEGACY-2"
    checks = "version-1 Viewer connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.serve_within = float(self.ctx.param("serve_within", 2.0))
        self.requested: dict[Conn, float] = {}  # SET_STREAM time, until it is answered
        self.served: set[Conn] = set()

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary:
            return
        if frame.from_viewer:
            if isinstance(message, Hello) and conn.hello is None and message.version == 1:
                self.check()
            elif isinstance(message, SetStream) and conn.viewer_version == 1 and (
                conn.authenticated_at is not None and conn not in self.served
            ):
                self.requested.setdefault(conn, frame.t)
            return
        if conn.viewer_version != 1:
            return
        if isinstance(message, VERSION_2_ONLY):
            self.fail(frame.t, f"{frame.label} sent to a version-1 Viewer", frame.where())
        elif isinstance(message, (StreamAccepted, StreamRejected)):
            self.served.add(conn)
            self.requested.pop(conn, None)

    def on_end(self, conn: Conn) -> None:
        self.served.discard(conn)
        asked = self.requested.pop(conn, None)
        end = conn.end
        if asked is not None and end is not None and end - asked > self.serve_within:
            self.fail(asked, "version-1 Viewer's SET_STREAM never served", conn.where)


@dataclass(eq=False, slots=True)
class _Due:
    t: float
    link: Link
    generation: int


@monitor
class Legacy1(Monitor):
    """LEGACY-1: against a version-1 Primary the Viewer infers STREAMING from CSD and keyframe.

    Read from the Viewer's telemetry against its own tap, on connections where the
    Primary sent AUTH_CHALLENGE with no PROTO before it, or `PROTO|version=1`
    (version 1):
    - a version-2 Viewer (its HELLO on the tap says version 2 or more) does not
      infer before the fallback timeout: its first STREAMING entry of the episode
      comes no earlier than `legacy_fallback` (Timings, 3 s) minus the tolerance
      after it entered NEGOTIATING (AUTH_OK); a version-1 Viewer infers at once, and
      so does any Viewer the Primary told `PROTO|version=1` (PROTOCOL.md 7.9: that
      PROTO confirms version 1 at once and starts no fallback timer);
    - it does infer: once the tap delivered, after STREAM_ACCEPTED, a CSD and then
      a keyframe of its epoch, the Viewer is STREAMING within the stall window's
      lower bound (Timings.stall_window, 1.5 s) plus the tolerance, counted from
      that keyframe or from the end of the fallback timeout, whichever is later
      (the timeout runs from the Viewer's own AUTH_OK, its NEGOTIATING record; a
      deadline set before that record was read moves when it is).
      Not judged when the connection ends or the Viewer disconnects first.
    Inference against version 2 is VER-4's reading. Evidence: the early entry, or
    the delivered CSD and keyframe and the Viewer's state at the deadline.
    """

    requirement = "LEGACY-1"
    checks = "inference(s) against a version-1 Primary"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = ctx.shared_links()
        self.authed: dict[str, float] = {}  # viewer -> NEGOTIATING entry of the episode
        self.streaming_at: dict[str, float] = {}
        self.due: dict[str, _Due] = {}
        self.judged: dict[str, tuple[Link, int]] = {}
        self.fallback = self.timings.legacy_fallback
        self.within = self.timings.stall_window[0] + self.tolerance

    def _v1(self, link: Link | None) -> bool:
        return link is not None and link.speaks_v2 is False

    def _waits(self, link: Link) -> bool:
        """Whether the Viewer must wait out the fallback timer before it infers (7.9)."""
        if link.proto_version is not None:
            return False  # PROTO|version=1: version 1 confirmed at once, no timer
        version = link.conn.viewer_version
        return version is None or version >= 2

    def on_frame(self, frame: WireFrame) -> None:
        if frame.conn.side is not VIEWER_TAP:
            self.skip_plain_media(frame)  # a Viewer's deliveries are on its own tap
            return
        link = self.links.current(frame)
        if link is None or not self._v1(link) or link.ready_at is None:
            return
        key = viewer_key(link)
        if self.judged.get(key) == (link, link.generation):
            return  # this delivery is already waiting for, or judged
        self.judged[key] = (link, link.generation)
        self._arm(key, _Due(self._start(key, link, link.ready_at), link, link.generation))

    def _start(self, key: str, link: Link, ready: float) -> float:
        """When the Viewer may infer: the delivery, or the end of its fallback timer.

        The timer runs from the Viewer's own AUTH_OK (its NEGOTIATING record); until
        that record is read (a Viewer short of CPU writes it late), from the AUTH_OK
        its tap delivered, which is no later.
        """
        if not self._waits(link):
            return ready
        episode = episode_of(self, key)
        authed = self.authed.get(episode.viewer) if episode is not None else None
        if authed is None:
            authed = link.conn.authenticated_at
        return ready if authed is None else max(ready, authed + self.fallback)

    def _arm(self, key: str, due: _Due) -> None:
        self.due[key] = due
        self.ctx.deadline(due.t, self.within, partial(self._settle, key, due))

    def _settle(self, key: str, due: _Due, now: float) -> None:
        if self.due.get(key) is not due:
            return
        later = self._start(key, due.link, due.t)
        if later > due.t:  # its timer began later than was known when the deadline was set
            self._arm(key, _Due(later, due.link, due.generation))
            return
        del self.due[key]
        closed = due.link.conn.closed
        if closed is not None and closed <= now:
            return
        episode = episode_of(self, key)
        if episode is None or episode.disconnected_at is not None:
            return
        self.check()
        entered = self.streaming_at.get(episode.viewer)
        if entered is not None:
            if entered <= due.t or self.in_time(due.t, self.within, entered, episode.where):
                return
            then, was = entered, f"STREAMING only {entered - due.t:.2f} s later"
        elif episode.state is ViewerState.STREAMING:
            return
        else:
            then, was = now, f"still {episode.state.value} {now - due.t:.2f} s later"
        self.fail(due.t, f"CSD and keyframe delivered by a version-1 Primary, {was}"
                  f"{self.waited(due.t, then)}", episode.where)

    def on_episode_end(self, episode: Episode) -> None:
        self.authed.pop(episode.viewer, None)
        self.streaming_at.pop(episode.viewer, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or rec.kind is None:
            return
        if rec.is_state(ViewerState.NEGOTIATING):
            self.authed[rec.viewer] = rec.t
            return
        if not rec.is_state(ViewerState.STREAMING) or rec.viewer in self.streaming_at:
            return
        self.streaming_at[rec.viewer] = rec.t
        link = self.links.of(rec.viewer, episode.start)
        if link is None or not self._v1(link):
            return
        self.check()
        authed = self.authed.get(rec.viewer)
        if authed is None or not self._waits(link):
            return
        earliest = authed + self.fallback - self.tolerance
        if rec.t < earliest:
            self.fail(rec.t, f"inferred STREAMING {rec.t - authed:.2f} s after AUTH_OK, before "
                      f"the {self.fallback:g} s fallback timeout", episode.where)
