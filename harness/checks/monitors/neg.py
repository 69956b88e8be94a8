"""NEG: negotiation after authentication, the accept's epoch, rejections, no early requests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import ANY_VIEWER, Conn, WireFrame
from reference.protocol.messages import (
    Auth,
    AuthOk,
    Bye,
    Caps,
    Error,
    ReqKeyframe,
    SetStream,
    StreamAccepted,
    StreamRejected,
    StreamStateMessage,
)
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind


@monitor
class Neg1(Monitor):
    """NEG-1: negotiation only after authentication; no CSD or media before STREAM_ACCEPTED.

    Read on every Primary-side connection, in wire order (a media frame and the
    accept read in one segment keep their order): a STREAM_ACCEPTED must come after
    the connection's AUTH_OK, and no CSD, VIDEO or AUDIO frame may precede the
    connection's STREAM_ACCEPTED. Each authenticated connection is one item
    checked. Evidence: the early accept; the first early media frame and how many
    followed.
    """

    requirement = "NEG-1"
    checks = "negotiated connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.early: dict[Conn, int] = {}  # media frames before the accept, per connection

    def on_frame(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not (frame.from_primary and conn.judges_primary):
            self.skip_plain_media(frame)  # plain media is the Primary's: not judged here
            return
        if isinstance(message, AuthOk) and conn.authenticated_at is None:
            self.check()
        elif isinstance(message, StreamAccepted) and conn.accepted is None:
            if conn.authenticated_at is None:
                self.fail(frame.t, "STREAM_ACCEPTED before AUTH_OK", frame.where())
        elif frame.is_media and conn.accepted is None:
            count = self.early.get(conn, 0)
            self.early[conn] = count + 1
            if count == 0:
                self.fail(frame.t, f"{frame.label} epoch {frame.epoch} before STREAM_ACCEPTED",
                          frame.where())
        else:
            self.skip_plain_media(frame)  # media after the accept is not this rule's

    def on_end(self, conn: Conn) -> None:
        count = self.early.pop(conn, 0)
        if count > 1:
            self.note(conn.end, f"{count} media frame(s) before STREAM_ACCEPTED in all",
                      conn.where)


@monitor
class Neg2(Monitor):
    """NEG-2: STREAM_ACCEPTED carries its epoch, and an accept never rolls the Viewer back.

    The Primary half, on every Primary-side connection that speaks version 2: each
    STREAM_ACCEPTED has an `epoch` field. The Viewer half joins the Viewer's tap and
    its telemetry: the `state` record that leaves NEGOTIATING (the accept taken) must
    carry an epoch no lower than the highest epoch the episode reported before it,
    nor than the highest STREAM_STATE epoch its Viewer-side tap delivered before the
    STREAM_ACCEPTED. The causal rule: that tap records a Primary-to-Viewer frame
    before forwarding it, so the Viewer read every STREAM_STATE recorded before the
    accept before it read the accept, and acted on the accept after the tap recorded
    it. Evidence: the accept without epoch; the state record that rolled back.
    """

    requirement = "NEG-2"
    checks = "STREAM_ACCEPTED message(s)"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.highest: dict[Episode, int] = {}
        self.announced: dict[str, int] = {}  # per Viewer tap: newest STREAM_STATE epoch
        self.floor: dict[str, int] = {}  # per Viewer tap: what the accept must not undercut

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not frame.from_primary:
            return
        if conn.judges_primary and conn.speaks_v2 and isinstance(message, StreamAccepted):
            self.check()
            if message.epoch is None:
                self.fail(frame.t, "STREAM_ACCEPTED without epoch", frame.where())
        if not conn.judges_viewer or conn.accepted is not None:
            return
        key = conn.viewer or ANY_VIEWER
        if isinstance(message, StreamStateMessage):
            self.announced[key] = max(self.announced.get(key, message.epoch), message.epoch)
        elif isinstance(message, StreamAccepted) and key in self.announced:
            self.floor[key] = self.announced.pop(key)

    def on_open(self, conn: Conn) -> None:
        if conn.judges_viewer:
            key = conn.viewer or ANY_VIEWER
            self.announced.pop(key, None)
            self.floor.pop(key, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or rec.kind is not RecordKind.STATE:
            return
        epoch = rec.epoch
        held = self.highest.get(episode)
        if rec.previous is ViewerState.NEGOTIATING and rec.state not in (
            None, ViewerState.DISCONNECTED
        ):
            self.check()
            delivered = self.floor.pop(rec.viewer, None)
            if delivered is None:
                delivered = self.floor.pop(ANY_VIEWER, None)
            floor = max((e for e in (held, delivered) if e is not None), default=None)
            if floor is not None and epoch is not None and epoch < floor:
                self.fail(rec.t, f"the accept rolled the epoch back {floor} -> {epoch}",
                          episode.where)
        if epoch is not None:
            self.highest[episode] = epoch if held is None else max(held, epoch)

    def on_episode_end(self, episode: Episode) -> None:
        self.highest.pop(episode, None)


@dataclass(slots=True)
class _Request:
    conn: Conn
    t: float
    answered: bool = False


@dataclass(slots=True)
class _Rejection:
    conn: Conn
    t: float
    left: bool = False  # the Viewer said BYE or ERROR: its close is not the Primary's


@monitor
class Neg3(Monitor):
    """NEG-3: an unsatisfiable SET_STREAM gets STREAM_REJECTED|reason=...; the session stays up.

    Read on every Primary-side connection, in wire order. Each SET_STREAM the Viewer
    sent after its AUTH and before the connection's STREAM_ACCEPTED (one negotiation
    per session: later ones are ignored, PROTOCOL.md 4.4) must get STREAM_ACCEPTED or
    STREAM_REJECTED within `answer_within` (default 1 s) plus the tolerance, if the
    connection was authenticated by then: the Primary reads its input in order, so a
    request pipelined right behind a right AUTH is acted on after it, even though
    the tap may record it before the AUTH_OK. Each
    STREAM_REJECTED is one item checked: it must carry a `reason`, and within
    `stay_up` (default 1 s) plus the tolerance after it the Primary must send no BYE
    or ERROR and the connection must not close unless the Viewer left (BYE or ERROR
    from it). A deadline after the connection or the trace ended is not judged.
    Evidence: the unanswered request; the rejection and what followed it.
    """

    requirement = "NEG-3"
    checks = "rejected request(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.answer_within = float(self.ctx.param("answer_within", 1.0)) + self.tolerance
        self.stay_up = float(self.ctx.param("stay_up", 1.0)) + self.tolerance
        self.requests: dict[Conn, list[_Request]] = {}
        self.rejections: dict[Conn, _Rejection] = {}
        self.authed: set[Conn] = set()  # the Viewer sent AUTH on the connection

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary:
            return
        if frame.from_viewer:
            if isinstance(message, Auth):
                self.authed.add(conn)
            elif isinstance(message, SetStream) and conn in self.authed and (
                conn.accepted is None
            ):
                request = _Request(conn, frame.t)
                self.requests.setdefault(conn, []).append(request)
                self.ctx.deadline(frame.t, self.answer_within, partial(self._unanswered, request))
            elif isinstance(message, (Bye, Error)) and conn in self.rejections:
                self.rejections[conn].left = True
            return
        if isinstance(message, (StreamAccepted, StreamRejected)):
            for request in self.requests.pop(conn, []):
                request.answered = True
                if not self.in_time(request.t, self.answer_within, frame.t, frame.where()):
                    self.check()
                    self.fail(request.t, f"SET_STREAM answered only {frame.t - request.t:.2f} s "
                              f"later{self.waited(request.t, frame.t)}", frame.where())
        if isinstance(message, StreamRejected):
            self.check()
            if not message.reason:
                self.fail(frame.t, "STREAM_REJECTED without a reason", frame.where())
            rejection = _Rejection(conn, frame.t)
            self.rejections[conn] = rejection
            self.ctx.at(frame.t + self.stay_up, partial(self._stayed, rejection))
            return
        pending = self.rejections.get(conn)
        if pending is not None and isinstance(message, (Bye, Error)):
            del self.rejections[conn]
            self.fail(frame.t, f"{frame.label} {frame.t - pending.t:.2f} s after the "
                      "rejection", frame.where())

    def _unanswered(self, request: _Request, now: float) -> None:
        if request.answered or request not in self.requests.get(request.conn, []):
            return
        self.requests[request.conn].remove(request)
        if request.conn.authenticated_at is None:
            return  # never authenticated: the request was rightly not acted on
        self.check()
        self.fail(request.t, f"SET_STREAM unanswered for {now - request.t:.2f} s"
                  f"{self.waited(request.t, now)}",
                  request.conn.where)

    def _stayed(self, rejection: _Rejection, now: float) -> None:
        if self.rejections.get(rejection.conn) is rejection:
            del self.rejections[rejection.conn]
            self.note(rejection.t, "session still up after the rejection", rejection.conn.where)

    def on_end(self, conn: Conn) -> None:
        self.requests.pop(conn, None)
        self.authed.discard(conn)
        rejection = self.rejections.pop(conn, None)
        if rejection is None or rejection.left or conn.closed is None:
            return
        if conn.closed <= rejection.t + self.stay_up:
            self.fail(conn.closed, f"connection closed {conn.closed - rejection.t:.2f} s "
                      "after the rejection", conn.where)


@monitor
class Neg4(Monitor):
    """NEG-4: a Viewer sends no stream request before it may.

    Read on every Viewer-side connection (the tap next to the Viewer), in wire
    order: no CAPS or SET_STREAM before the connection's AUTH_OK, and no
    REQ_KEYFRAME before its STREAM_ACCEPTED. The causal rule: the Viewer-side tap
    records a Primary-to-Viewer frame when it reads it, before forwarding it, and a
    Viewer-to-Primary frame after the Viewer sent it; a request recorded before
    the AUTH_OK or STREAM_ACCEPTED it depends on was sent before the Viewer could
    have received it. No time window is involved. Each connection that reached
    STREAM_ACCEPTED, or ended, after AUTH_OK is one item checked. Evidence: the
    early request.
    """

    requirement = "NEG-4"
    checks = "Viewer connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.judged: set[Conn] = set()
        self.early: set[Conn] = set()

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_viewer:
            return
        if frame.from_primary:
            if isinstance(message, StreamAccepted) and conn not in self.judged:
                self.judged.add(conn)
                self.check()
            return
        if isinstance(message, (Caps, SetStream)) and conn.authenticated_at is None:
            self._early(frame, "before AUTH_OK")
        elif isinstance(message, ReqKeyframe) and conn.accepted is None:
            self._early(frame, "before STREAM_ACCEPTED")

    def _early(self, frame: WireFrame, when: str) -> None:
        conn = frame.conn
        if conn in self.early:
            return  # one violation per connection
        self.early.add(conn)
        if conn not in self.judged:
            self.judged.add(conn)
            self.check()
        self.fail(frame.t, f"{frame.label} {when}", frame.where())

    def on_end(self, conn: Conn) -> None:
        if conn.judges_viewer and conn not in self.judged and conn.authenticated_at is not None:
            self.check()
        self.judged.discard(conn)
        self.early.discard(conn)
