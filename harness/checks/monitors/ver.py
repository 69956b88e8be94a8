"""VER: the Viewer's HELLO, the Primary's version answer, unknown input ignored by both."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.sides import receiver_judged, receiver_name, reply_direction
from harness.checks.monitors.viewer_link import Deferred
from harness.checks.wire import Conn, WireFrame
from harness.trace import Record
from reference.protocol.messages import (
    AuthChallenge,
    AuthFail,
    Bye,
    Error,
    Hello,
    Proto,
    StreamStateMessage,
    UnknownMessage,
)
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind

VIEWER_ROLE = "viewer"  # the `client` value a Viewer's HELLO names (PROTOCOL.md 3)


@monitor
class Ver1(Monitor):
    """VER-1: the first frame a Viewer sends on every connection is HELLO naming its role.

    Read on every Viewer-side connection (the tap next to the Viewer, where nothing
    of the harness stands between it and the wire): the first viewer-to-primary
    frame must be a CONTROL frame that the core parses as HELLO, with
    `client=viewer` and a version of at least 1. Connections on the Primary-side
    tap are not judged: the harness's own raw clients connect there. Evidence:
    the first frame of the offending connection.
    """

    requirement = "VER-1"
    checks = "first Viewer frame(s)"
    reads_plain_media = False  # the Viewer's first frame; plain media is the Primary's

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.started: set[Conn] = set()

    def on_frame(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_viewer and conn.judges_viewer) or conn in self.started:
            return
        self.started.add(conn)
        self.check()
        message = frame.message
        if not isinstance(message, Hello):
            self.fail(frame.t, f"first Viewer frame is {frame.label}, not HELLO", frame.where())
        elif message.client != VIEWER_ROLE or message.version < 1:
            self.fail(
                frame.t,
                f"HELLO names client={message.client!r} version={message.version}",
                frame.where(),
            )

    def on_wire_error(self, conn: Conn, record: Record) -> None:
        self.started.add(conn)  # undecodable bytes: FRAME-1's business, not a first message

    def on_end(self, conn: Conn) -> None:
        self.started.discard(conn)


@monitor
class Ver2(Monitor):
    """VER-2: the Primary answers HELLO with PROTO|version=V first; version 1 sends no PROTO.

    Read on every Primary-side connection, in wire order. PROTO, when sent, must be
    the Primary's first frame on the connection and choose a version no higher than
    the HELLO asked for. Each AUTH_CHALLENGE that answers a HELLO is one version
    answer checked; with the parameter `primary_version: 2` a HELLO asking for
    version 2 or more must have had a PROTO before it, with `primary_version: 1` no
    PROTO may be sent at all. A Primary that sent no PROTO to a version-2 HELLO
    speaks version 1 and must send no STREAM_STATE (to a version-1 HELLO that is
    LEGACY-2's rule). Evidence: the misplaced or missing PROTO, the STREAM_STATE.
    """

    requirement = "VER-2"
    checks = "version answer(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        expect = self.ctx.param("primary_version", None)
        self.expect = int(expect) if expect is not None else None
        self.spoken: set[Conn] = set()  # connections where the Primary sent a frame already
        self.legacy_state: set[Conn] = set()  # STREAM_STATE without PROTO reported

    def on_frame(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not (frame.from_primary and conn.judges_primary):
            self.skip_plain_media(frame)  # plain media is the Primary's: not judged here
            return
        first = conn not in self.spoken
        self.spoken.add(conn)
        self.skip_plain_media(frame)  # of the media, only a first frame is read
        message = frame.message
        asked = conn.viewer_version or 1
        if isinstance(message, Proto) and conn.proto is None:
            if not first:
                self.fail(frame.t, "PROTO is not the Primary's first frame", frame.where())
            if self.expect == 1:
                self.fail(frame.t, "a version-1 Primary sent PROTO", frame.where())
            if message.version > asked or message.version < 1:
                self.fail(
                    frame.t,
                    f"PROTO version {message.version} for a HELLO asking {asked}",
                    frame.where(),
                )
        elif isinstance(message, AuthChallenge) and conn.challenge is None:
            if conn.hello is None:
                return
            self.check()
            if conn.proto is None and self.expect == 2 and asked >= 2:
                self.fail(frame.t, "a version-2 HELLO got no PROTO", frame.where())
        elif (
            isinstance(message, StreamStateMessage)
            and conn.proto is None
            and asked >= 2
            and conn not in self.legacy_state
        ):
            self.legacy_state.add(conn)
            self.fail(frame.t, "STREAM_STATE with no PROTO (version 1)", frame.where())

    def on_end(self, conn: Conn) -> None:
        self.spoken.discard(conn)
        self.legacy_state.discard(conn)


@dataclass(slots=True)
class _Unknown:
    conn: Conn
    t: float
    direction: str
    what: str
    settled: bool = False
    explained: bool = False  # a close after it is not the receiver's doing


@monitor
class Ver3(Monitor):
    """VER-3: unknown message names and unknown key=value fields are ignored, never fatal.

    Judged for whichever side receives the unknown input, on the tap next to that
    side: a Primary on Primary-side connections, a Viewer on Viewer-side ones
    (harness.checks.monitors.sides). An unknown message is one the protocol core
    parses as UnknownMessage; an unknown field is a known message with `extra`
    fields (BYE and ERROR, which close anyway, are not judged). Within `window`
    (default 1 s, the promptness FRAME-2 asks of an ERROR) plus the tolerance after
    it, in wire order, the receiver must send no ERROR and no BYE on the
    connection, and the connection must not close unless the sender's BYE or ERROR,
    or an AUTH_FAIL (a wrong answer refused), explains the close. Input whose
    window outlasts the connection's explained end, or the trace, counts as ignored
    up to that point. Evidence: the ERROR, BYE or close, with the unknown text.
    """

    requirement = "VER-3"
    checks = "unknown message(s) or field(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.within = float(self.ctx.param("window", 1.0)) + self.tolerance
        self.pending: dict[Conn, list[_Unknown]] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if message is None:
            return
        for item in list(self.pending.get(conn, ())):
            from_receiver = frame.dir == reply_direction(item.direction)
            if from_receiver and isinstance(message, (Error, Bye)):
                if frame.t <= item.t + self.within:
                    self._settle(item, f"{receiver_name(item.direction)} answered "
                                 f"{frame.label} to {item.what}", frame.t)
            elif isinstance(message, AuthFail) or (
                not from_receiver and isinstance(message, (Bye, Error))
            ):
                item.explained = True  # the sender left, or a wrong AUTH was refused
        unknown = isinstance(message, UnknownMessage) or (
            bool(message.extra) and not isinstance(message, (Bye, Error))
        )
        if not unknown or not receiver_judged(conn, frame.dir):
            return
        item = _Unknown(conn, frame.t, frame.dir, repr(frame.text[:60]))
        self.pending.setdefault(conn, []).append(item)
        self.ctx.at(item.t + self.within, partial(self._due, item))

    def _settle(self, item: _Unknown, failure: str | None, t: float) -> None:
        if item.settled:
            return
        item.settled = True
        self.check()
        if failure is not None:
            self.fail(t, failure, item.conn.where)
        waiting = self.pending.get(item.conn)
        if waiting is not None and item in waiting:
            waiting.remove(item)

    def _due(self, item: _Unknown, now: float) -> None:
        self._settle(item, None, now)

    def on_end(self, conn: Conn) -> None:
        for item in list(self.pending.pop(conn, [])):
            closed = conn.closed
            if closed is not None and closed <= item.t + self.within and not item.explained:
                self._settle(item, f"connection closed {closed - item.t:.2f} s after "
                             f"{item.what}", closed)
            else:
                self._settle(item, None, closed if closed is not None else item.t)


@monitor
class Ver4(Monitor):
    """VER-4: with version 2, STREAM_STATE is authoritative and the Viewer infers nothing.

    Read from the Viewer's telemetry against its own tap, on every `state` record
    entering STREAMING. On a connection where the Primary announced version 2
    (PROTO version 2 or a STREAM_STATE on the tap, delivered at or before the
    record) the entry must carry a `server_state`: an entry without one is
    inference from media. On a version-1 connection (AUTH_CHALLENGE with no PROTO
    before it) the entry must carry none: no STREAM_STATE was ever delivered, so a
    server state in the record is invented. Which server state a version-2 entry
    names is STATE-2's reading; when a version-1 Viewer may infer is LEGACY-1's.
    Without a Viewer tap the version is unknown and the rule is not judged. No
    window. Evidence: the entry and the connection's version.
    """

    requirement = "VER-4"
    checks = "STREAMING entry/entries with a known version"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = ctx.shared_links()
        self.deferred = Deferred(self)

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or not rec.is_state(ViewerState.STREAMING):
            return
        if episode.state is ViewerState.STREAMING:
            return
        link = self.links.of(rec.viewer, episode.start)
        if link is None or link.speaks_v2 is None:
            return
        self.check()
        said = rec.server_state
        if link.speaks_v2 and said is None:
            self.fail(rec.t, "entered STREAMING by inference (no server state) on version 2",
                      episode.where)
        elif not link.speaks_v2 and said is not None:
            self.fail(rec.t, f"entered STREAMING with server state {said.name} on version 1, "
                      "which has no STREAM_STATE", episode.where)
