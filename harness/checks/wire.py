"""Connections as the taps saw them, followed record by record in wire order.

The tracker keeps, for every live tap connection, the protocol facts that many
rules read (versions, authentication, the accepted epoch, the last stream state
the Primary announced) and nothing else: per-rule state lives in the monitors.
A connection's entry is dropped when the connection ends, so memory follows the
number of live connections, not the length of the trace.

Control texts are parsed with the protocol core's own parser, so a checker and the
peers never disagree about what a message says.

The facts describe the connection *before* the record being judged: the engine
hands every frame to the monitors first and updates the connection afterwards, so
"the stream state announced before this frame" is simply `conn.stream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from harness.trace import P2V, PRIMARY_SIDE, V2P, VIEWER_SIDE, Record
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import MEDIA_TYPES, FrameFlags, FrameType
from reference.protocol.messages import (
    AuthChallenge,
    AuthFail,
    AuthOk,
    Hello,
    Message,
    Proto,
    StreamAccepted,
    StreamStateMessage,
    UnknownMessage,
    decode_message,
)
from reference.protocol.states import StreamState

ANY_VIEWER = ""  # the key of a viewer-side tap that names no Viewer


class TapSide(str, Enum):
    """Which peer a tap sits next to: the rules of that peer are judged on it."""

    PRIMARY = "primary"
    VIEWER = "viewer"
    FOREIGN = "foreign"  # a capture from elsewhere: one link, both peers judged on it


def tap_side(tap: str) -> TapSide:
    if tap == PRIMARY_SIDE or tap.startswith(PRIMARY_SIDE + ":"):
        return TapSide.PRIMARY
    if tap == VIEWER_SIDE or tap.startswith(VIEWER_SIDE + ":"):
        return TapSide.VIEWER
    return TapSide.FOREIGN


def tap_viewer(tap: str) -> str | None:
    """The Viewer id a viewer-side tap is named after (`viewer_side:<id>`)."""
    prefix = VIEWER_SIDE + ":"
    return tap[len(prefix) :] if tap.startswith(prefix) else None


@dataclass(eq=False, slots=True)
class Conn:
    """One tap connection and the protocol facts established on it so far."""

    tap: str
    id: str
    side: TapSide
    opened: float | None = None
    closed: float | None = None
    close_reason: str = ""
    # When the judged peer next to this tap closed its socket (its EOF reached the tap):
    # a partition can hold that FIN back from the other side, and the relayed
    # connection, which `closed` records, ends only when it gets through.
    own_close: float | None = None
    half_closed: float | None = None  # the first EOF from either side: no longer alive
    frames: int = 0  # frames seen so far: the next frame's position on the wire
    last_frame: dict[str, float] = field(default_factory=dict)  # direction -> time
    hello: Hello | None = None
    proto: Proto | None = None
    challenge: AuthChallenge | None = None
    challenged_at: float | None = None
    authenticated_at: float | None = None
    auth_failed_at: float | None = None
    accepted: StreamAccepted | None = None
    accepted_at: float | None = None
    stream: tuple[StreamState, int] | None = None  # last STREAM_STATE announced
    stream_at: float | None = None
    keyframe_epochs: set[int] = field(default_factory=set)  # epochs with a keyframe sent
    wire_errors: int = 0
    # Which peer's rules this tap judges and the Viewer it is named after (`tap_viewer`);
    # fixed by the tap, read for every frame.
    judges_primary: bool = field(init=False)
    judges_viewer: bool = field(init=False)
    viewer: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.judges_primary = self.side is not TapSide.VIEWER
        self.judges_viewer = self.side is not TapSide.PRIMARY
        self.viewer = tap_viewer(self.tap)

    @property
    def where(self) -> str:
        return f"{self.tap}/{self.id}"

    @property
    def viewer_version(self) -> int | None:
        return self.hello.version if self.hello is not None else None

    @property
    def speaks_v2(self) -> bool:
        """Version 2 on this connection: the Primary sent PROTO|version=2 or higher."""
        return self.proto is not None and self.proto.version >= 2

    @property
    def start(self) -> float | None:
        return self.opened

    @property
    def end(self) -> float | None:
        if self.closed is not None:
            return self.closed
        return max(self.last_frame.values(), default=self.opened)


@dataclass(eq=False, slots=True)
class WireFrame:
    """One frame on a tap connection, with its control message parsed.

    The fields every monitor asks about are computed once, here, not per monitor.
    """

    record: Record
    conn: Conn
    position: int  # index among this connection's frames: wire order
    type: FrameType | None
    message: Message | None  # None for media, and for control text that does not parse
    t: float
    dir: str
    from_primary: bool
    from_viewer: bool
    is_control: bool
    is_media: bool
    is_keyframe: bool
    epoch: int
    # AUDIO, or VIDEO that is not a keyframe, sent by the Primary: the bulk of a trace,
    # and nothing most media rules read (they want CSD and keyframes); see
    # `Monitor.reads_plain_media`.
    plain_media: bool

    @classmethod
    def of(cls, record: Record, conn: Conn) -> WireFrame:
        kind = frame_type(record)
        direction = str(record["dir"])
        control = kind is _CONTROL
        key = record.get("key")
        if key is None:
            key = int(record.get("flags", 0)) & _KEYFRAME_FLAG
        from_primary = direction == P2V
        keyframe = kind is _VIDEO and bool(key)
        media = kind in MEDIA_TYPES
        return cls(
            record,
            conn,
            conn.frames,
            kind,
            parse_control(str(record.get("msg", ""))) if control else None,
            float(record["t"]),
            direction,
            from_primary,
            direction == V2P,
            control,
            media,
            keyframe,
            int(record.get("epoch", 0)),
            media and from_primary and not keyframe and kind is not _CSD,
        )

    @property
    def malformed(self) -> bool:
        """A control frame whose text the core's parser refuses."""
        return self.is_control and self.message is None

    @property
    def unknown(self) -> bool:
        return isinstance(self.message, UnknownMessage)

    @property
    def text(self) -> str:
        return str(self.record.get("msg", ""))

    @property
    def label(self) -> str:
        """The message name for control frames, the frame type for media: for evidence."""
        if self.message is not None:
            if isinstance(self.message, UnknownMessage):
                return self.message.name
            return self.message.NAME
        if self.is_control:
            return "malformed control text"
        return self.type.name if self.type is not None else str(self.record.get("type"))

    def where(self) -> str:
        return self.conn.where


def parse_control(text: str) -> Message | None:
    try:
        return decode_message(text.encode("utf-8"))
    except RemoteProtocolError:
        return None


# Read for every frame: a dict lookup, and enum members bound once.
_FRAME_TYPES = {t.name: t for t in FrameType}
_CONTROL, _VIDEO, _CSD = FrameType.CONTROL, FrameType.VIDEO, FrameType.CSD
_KEYFRAME_FLAG = int(FrameFlags.KEYFRAME)


def frame_type(record: Record) -> FrameType | None:
    name = record.get("type")
    return _FRAME_TYPES.get(name) if isinstance(name, str) else None


class ConnectionTracker:
    """The live connections of every tap, updated one record at a time."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], Conn] = {}
        # The newest connection of each Viewer's tap: where its telemetry is cross-checked.
        self.viewer_conn: dict[str, Conn] = {}

    def conn(self, record: Record) -> Conn:
        key = (str(record["tap"]), str(record["conn"]))
        found = self.live.get(key)
        if found is None:
            found = Conn(key[0], key[1], tap_side(key[0]))
            self.live[key] = found
            if found.side is TapSide.VIEWER:
                self.viewer_conn[found.viewer or ANY_VIEWER] = found
        return found

    def frame(self, record: Record) -> WireFrame:
        return WireFrame.of(record, self.conn(record))

    def after_frame(self, frame: WireFrame) -> None:
        """Record what the frame established, once every monitor has judged it."""
        conn, message, t = frame.conn, frame.message, frame.t
        conn.frames += 1
        conn.last_frame[frame.dir] = t
        if frame.is_keyframe and frame.from_primary:
            conn.keyframe_epochs.add(frame.epoch)
        if message is None:
            return
        if frame.from_viewer:
            if isinstance(message, Hello) and conn.hello is None:
                conn.hello = message
            return
        if isinstance(message, StreamStateMessage):
            conn.stream, conn.stream_at = (message.state, message.epoch), t
        elif isinstance(message, Proto) and conn.proto is None:
            conn.proto = message
        elif isinstance(message, AuthChallenge) and conn.challenge is None:
            conn.challenge, conn.challenged_at = message, t
        elif isinstance(message, AuthOk) and conn.authenticated_at is None:
            conn.authenticated_at = t
        elif isinstance(message, AuthFail) and conn.auth_failed_at is None:
            conn.auth_failed_at = t
        elif isinstance(message, StreamAccepted) and conn.accepted is None:
            conn.accepted, conn.accepted_at = message, t

    def opened(self, record: Record) -> Conn:
        conn = self.conn(record)
        conn.opened = float(record["t"])
        return conn

    def closing(self, record: Record) -> Conn:
        conn = self.conn(record)
        conn.closed = float(record["t"])
        conn.close_reason = str(record.get("reason", ""))
        return conn

    def half_closing(self, record: Record) -> Conn:
        """A `half_close` record: one side of the relayed connection sent its EOF."""
        conn = self.conn(record)
        own = {TapSide.PRIMARY: "upstream", TapSide.VIEWER: "client"}.get(conn.side)
        if conn.half_closed is None:
            conn.half_closed = float(record["t"])
        if own is not None and record.get("side") == own and conn.own_close is None:
            conn.own_close = float(record["t"])
        return conn

    def forget(self, conn: Conn) -> None:
        """Drop an ended connection; a Viewer's newest one stays for its lagging telemetry."""
        self.live.pop((conn.tap, conn.id), None)

    def forget_viewer(self, viewer: str) -> None:
        """A retired Viewer (`Engine.retire`): its newest connection is not needed any more."""
        self.viewer_conn.pop(viewer, None)

    def of_viewer(self, viewer: str) -> Conn | None:
        """The newest connection on this Viewer's tap (or on the only, unnamed Viewer tap)."""
        return self.viewer_conn.get(viewer) or self.viewer_conn.get(ANY_VIEWER)

    def wire_error(self, record: Record) -> Conn:
        conn = self.conn(record)
        conn.wire_errors += 1
        return conn
