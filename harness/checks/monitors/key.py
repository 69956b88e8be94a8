"""KEY: when the Primary must have sent a keyframe (before ACTIVE, after a request, to a joiner)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.members import VIDEO
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import Conn, WireFrame
from reference.protocol.frames import FrameType
from reference.protocol.messages import ReqKeyframe, StreamAccepted, StreamStateMessage
from reference.protocol.states import StreamState


@monitor
class Key1(Monitor):
    """KEY-1: every entry into ACTIVE follows a keyframe of the epoch (start, reconfigure, resume).

    Read on every Primary-side connection after its STREAM_ACCEPTED, in wire order:
    each STREAM_STATE ACTIVE that enters ACTIVE, that is every one not repeating an
    ACTIVE of the same epoch (the first start, the end of every RECONFIGURING, a
    resume from PAUSED), must be preceded on the connection by a VIDEO keyframe of
    that epoch sent since the last STREAM_STATE that was not ACTIVE (PROTOCOL.md
    7.11: not only the first start of an epoch). Order, not
    timestamps, decides: a keyframe and the ACTIVE read in one segment keep their
    wire order. The snapshot, the connection's first STREAM_STATE, is not judged
    wherever it comes (before STREAM_ACCEPTED as SNAP-1 asks, or after it): it
    tells the state the stream is in, not an entry into ACTIVE (7.11); where it
    comes is SNAP-1's rule. Evidence: the ACTIVE with no keyframe before it.
    """

    requirement = "KEY-1"
    checks = "transition(s) to ACTIVE"
    reads_plain_media = False  # keyframes only

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.keyed: dict[Conn, set[int]] = {}  # epochs keyframed since leaving ACTIVE

    def on_media(self, frame: WireFrame) -> None:
        if frame.is_keyframe and frame.from_primary and frame.conn.judges_primary:
            self.keyed.setdefault(frame.conn, set()).add(frame.epoch)

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            return
        message = frame.message
        if not isinstance(message, StreamStateMessage):
            return
        if message.state is not StreamState.ACTIVE:
            self.keyed[conn] = set()
            return
        if conn.stream is None or conn.accepted_at is None:
            return  # the snapshot, or a state before the accept: no media yet to key it
        if conn.stream == (StreamState.ACTIVE, message.epoch):
            return  # a repeat of the truth: not a transition
        self.check()
        if message.epoch not in self.keyed.get(conn, set()):
            self.fail(
                frame.t, f"ACTIVE for epoch {message.epoch} before a keyframe of it", frame.where()
            )

    def on_end(self, conn: Conn) -> None:
        self.keyed.pop(conn, None)


@dataclass(slots=True)
class _Request:
    t: float
    epoch: int
    conn: Conn
    answered: bool = False


@monitor
class Key2(Monitor):
    """KEY-2: REQ_KEYFRAME of the running epoch is answered within 1 s, or the encoder restarts.

    Read on every Primary-side connection: a REQ_KEYFRAME whose epoch is the epoch of
    the last STREAM_STATE ACTIVE announced on the connection must be followed on that
    connection, within `keyframe_answer` (Timings, 1 s) plus the tolerance, by a VIDEO
    keyframe or by a STREAM_STATE with a larger epoch (an encoder restart). Requests
    for another epoch, or while the stream is not ACTIVE, are not judged. A request
    whose deadline lies after the connection or the trace ended is not judged.
    Evidence: the unanswered request; for a PASS, the answer latencies.
    """

    requirement = "KEY-2"
    checks = "keyframe request(s)"
    reads_plain_media = False  # keyframes and REQ_KEYFRAME

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.limit = self.timings.keyframe_answer + self.tolerance
        self.pending: dict[Conn, list[_Request]] = {}

    def on_media(self, frame: WireFrame) -> None:
        if frame.is_keyframe:
            self.on_control(frame)

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not conn.judges_primary:
            return
        message = frame.message
        if frame.from_viewer and isinstance(message, ReqKeyframe):
            stream = conn.stream
            if stream is None or stream[0] is not StreamState.ACTIVE:
                return
            if message.epoch != stream[1]:
                return
            request = _Request(frame.t, message.epoch, conn)
            self.pending.setdefault(conn, []).append(request)
            self.ctx.deadline(request.t, self.limit, partial(self._due, request))
            return
        if not frame.from_primary or conn not in self.pending:
            return
        restart = isinstance(message, StreamStateMessage)
        if not (frame.is_keyframe or restart):
            return
        for request in self.pending.pop(conn):
            if restart and message.epoch <= request.epoch:  # type: ignore[union-attr]
                self.pending.setdefault(conn, []).append(request)
                continue
            request.answered = True
            self.check()
            took = 1000 * (frame.t - request.t)
            if not self.in_time(request.t, self.limit, frame.t, frame.where()):
                self.fail(request.t, f"REQ_KEYFRAME epoch {request.epoch} answered only "
                          f"{took:.0f} ms later{self.waited(request.t, frame.t)}", frame.where())
                continue
            self.note(frame.t, f"{frame.label} {took:.0f} ms after the request", frame.where())

    def _due(self, request: _Request, now: float) -> None:
        waiting = self.pending.get(request.conn, [])
        if request.answered or request not in waiting:
            return
        waiting.remove(request)
        self.check()
        self.fail(
            request.t,
            f"REQ_KEYFRAME epoch {request.epoch} unanswered for {now - request.t:.2f} s"
            f"{self.waited(request.t, now)}",
            request.conn.where,
        )

    def on_end(self, conn: Conn) -> None:
        self.pending.pop(conn, None)  # deadlines after the close are not judged


@dataclass(slots=True)
class _Join:
    t: float
    epoch: int | None
    conn: Conn
    csd: float | None = None
    key: float | None = None


@monitor
class Key3(Monitor):
    """KEY-3: a late joiner receives CSD and a keyframe within 1 s of its STREAM_ACCEPTED.

    Read on every Primary-side connection: a STREAM_ACCEPTED sent while the last
    STREAM_STATE announced on the connection was ACTIVE (a join into a running
    stream; a version-1 connection, which has no STREAM_STATE, counts as running)
    must be followed on the connection by a CSD and a VIDEO keyframe of that epoch or
    a later one, both within `keyframe_answer` (Timings, 1 s) plus the tolerance.
    Joins during RECONFIGURING, PAUSED or STOPPED are served with the epoch's first
    keyframe and are not judged here, nor is a join whose stream leaves ACTIVE (a
    STREAM_STATE other than ACTIVE on the connection) before its CSD and keyframe
    came: a paused stream owes none. A join whose deadline lies after the
    connection or the trace ended is not judged. Evidence: the join and what arrived.
    """

    requirement = "KEY-3"
    checks = "late join(s) into a running stream"
    reads_plain_media = False  # the first CSD and keyframe after STREAM_ACCEPTED

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.limit = self.timings.keyframe_answer + self.tolerance
        self.joins: dict[Conn, _Join] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            return
        if isinstance(frame.message, StreamAccepted) and conn.accepted is None:
            stream = conn.stream
            if stream is None and conn.speaks_v2:
                return
            if stream is not None and stream[0] is not StreamState.ACTIVE:
                return
            join = _Join(frame.t, stream[1] if stream else None, conn)
            self.joins[conn] = join
            self.ctx.deadline(join.t, self.limit, partial(self._due, join))
        elif (
            isinstance(frame.message, StreamStateMessage) and conn in self.joins
            and frame.message.state is not StreamState.ACTIVE
        ):
            del self.joins[conn]  # the stream stopped running: it owes no keyframe now

    def on_media(self, frame: WireFrame) -> None:
        conn = frame.conn
        pending = self.joins.get(conn)
        if pending is None or not frame.from_primary:
            return
        join = pending
        if frame.type is FrameType.CSD and join.csd is None:
            join.csd = frame.t
        if frame.is_keyframe and (join.epoch is None or frame.epoch >= join.epoch):
            join.key = frame.t
        if join.csd is not None and join.key is not None:
            del self.joins[conn]
            self.check()
            took = 1000 * (join.key - join.t)
            done = max(join.key, join.csd)
            if not self.in_time(join.t, self.limit, done, conn.where):
                self.fail(join.t, f"late joiner's CSD+keyframe only {took:.0f} ms after "
                          f"STREAM_ACCEPTED{self.waited(join.t, done)}", conn.where)
                return
            self.note(join.key, f"keyframe {took:.0f} ms after STREAM_ACCEPTED", conn.where)

    def _due(self, join: _Join, now: float) -> None:
        if self.joins.get(join.conn) is not join:
            return
        del self.joins[join.conn]
        self.check()
        got = "no keyframe" if join.key is None else "no CSD"
        self.fail(
            join.t, f"late joiner's CSD+keyframe: {got} within {self.limit:.1f} s", join.conn.where
        )

    def on_end(self, conn: Conn) -> None:
        self.joins.pop(conn, None)


@monitor
class Key4(Monitor):
    """KEY-4: a non-keyframe goes to a Viewer only after that Viewer was sent a keyframe.

    Read on every Primary-side connection after its STREAM_ACCEPTED, in wire order
    (no timing): each VIDEO without the KEYFRAME flag must be preceded on the
    connection by a VIDEO keyframe of its epoch sent since the STREAM_ACCEPTED and
    since the last STREAM_STATE that was not ACTIVE (PROTOCOL.md 7.11: a late
    joiner and a resumed stream start from a keyframe). Media before the accept is
    NEG-1's; a frame tagged with an epoch older than the newest the connection has
    carried (in a STREAM_STATE, the STREAM_ACCEPTED or a media header) is a tagging
    fault, EPOCH-2's, and is not judged here. Evidence: the first unkeyed non-keyframe
    of each epoch each time the gate closed.
    """

    requirement = "KEY-4"
    checks = "non-keyframe VIDEO frame(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.keyed: dict[Conn, set[int]] = {}  # epochs keyframed since the gate last closed
        self.newest: dict[Conn, int] = {}  # the newest epoch the connection has carried
        self.reported: dict[Conn, set[int]] = {}  # epochs already failed once

    def _carried(self, conn: Conn, epoch: int) -> None:
        if epoch > self.newest.get(conn, -1):
            self.newest[conn] = epoch

    def on_control(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            return
        message = frame.message
        if isinstance(message, StreamAccepted):
            self._close_gate(conn)
            if message.epoch is not None:
                self._carried(conn, message.epoch)
        elif isinstance(message, StreamStateMessage):
            self._carried(conn, message.epoch)
            if message.state is not StreamState.ACTIVE and conn in self.keyed:
                self._close_gate(conn)

    def _close_gate(self, conn: Conn) -> None:
        """From here on the Viewer needs a keyframe again before any non-keyframe."""
        self.keyed[conn] = set()
        self.reported.pop(conn, None)

    def on_media(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            self.skip_plain_media(frame)  # plain media is the Primary's: not judged here
            return
        stale = frame.epoch < self.newest.get(conn, -1)
        self._carried(conn, frame.epoch)
        keyed = self.keyed.get(conn)
        if keyed is None or frame.type is not VIDEO:
            return  # before STREAM_ACCEPTED (NEG-1), or CSD / AUDIO
        if frame.is_keyframe:
            keyed.add(frame.epoch)
            return
        if stale:
            return  # mis-tagged: EPOCH-2
        self.check()
        if frame.epoch in keyed:
            return
        reported = self.reported.setdefault(conn, set())
        if frame.epoch not in reported:  # one violation per breach, not per frame of it
            reported.add(frame.epoch)
            self.fail(
                frame.t,
                f"non-keyframe VIDEO of epoch {frame.epoch} before any keyframe of it "
                "was sent to this Viewer",
                frame.where(),
            )

    def on_end(self, conn: Conn) -> None:
        self.keyed.pop(conn, None)
        self.newest.pop(conn, None)
        self.reported.pop(conn, None)
