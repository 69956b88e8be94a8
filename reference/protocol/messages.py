"""Typed control messages: every message of PROTOCOL.md as an immutable object.

Each message class declares its wire fields with `wire()`; the generic codec
below turns them into `ControlText` and back. Unknown message names parse to
`UnknownMessage` and unknown `key=value` fields land in `extra`: neither is an
error (VER-3). A known field with a bad value is a RemoteProtocolError with
code `bad_field`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Literal

from reference.protocol.errors import ErrorCode, RemoteProtocolError
from reference.protocol.grammar import ControlText, decode_control, encode_control
from reference.protocol.states import StreamState

Kind = Literal["str", "int", "bool", "list", "state"]
Direction = Literal["viewer->primary", "primary->viewer", "both"]
UINT32_MAX = 0xFFFFFFFF


class StreamEvent(str, Enum):
    """STREAM_EVENT vocabulary: informational and lossy, never state (EVT-1)."""

    RECONFIG_STARTED = "RECONFIG_STARTED"
    RECONFIG_DONE = "RECONFIG_DONE"
    ENCODER_RESTARTED = "ENCODER_RESTARTED"
    BACKEND_FALLBACK = "BACKEND_FALLBACK"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    STOPPED = "STOPPED"
    KEYFRAME_SENT = "KEYFRAME_SENT"


# The state each event reports a change to (PROTOCOL.md 4.7): it follows the STREAM_STATE
# of that state on the wire and never replaces it (STATE-8). KEYFRAME_SENT reports none.
EVENT_STATE: dict[StreamEvent, StreamState] = {
    StreamEvent.RECONFIG_STARTED: StreamState.RECONFIGURING,
    StreamEvent.ENCODER_RESTARTED: StreamState.RECONFIGURING,
    StreamEvent.BACKEND_FALLBACK: StreamState.RECONFIGURING,
    StreamEvent.RECONFIG_DONE: StreamState.ACTIVE,
    StreamEvent.RESUMED: StreamState.ACTIVE,
    StreamEvent.PAUSED: StreamState.PAUSED,
    StreamEvent.STOPPED: StreamState.STOPPED,
}


def matching_events(previous: StreamState | None, new: StreamState) -> frozenset[StreamEvent]:
    """The events that may follow a change from `previous` to `new` (EVT-2, PROTOCOL.md 4.7).

    ACTIVE is RESUMED when it leaves PAUSED and RECONFIG_DONE otherwise (the epoch's first
    keyframe went out), whatever began the epoch: a reconfiguration, an encoder restart or
    a backend fallback.
    """
    if new is StreamState.ACTIVE:
        resumed = previous is StreamState.PAUSED
        return frozenset({StreamEvent.RESUMED if resumed else StreamEvent.RECONFIG_DONE})
    return frozenset(event for event, state in EVENT_STATE.items() if state is new)


def wire(
    key: str, kind: Kind = "str", *, positional: bool = False, required: bool = True
) -> dict[str, Any]:
    return {"key": key, "kind": kind, "positional": positional, "required": required}


def _field(
    key: str, kind: Kind = "str", *, positional: bool = False, required: bool = True,
    default: Any = dataclasses.MISSING,
) -> Any:
    meta = wire(key, kind, positional=positional, required=required)
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Message:
    NAME: ClassVar[str] = ""
    DIRECTION: ClassVar[Direction] = "both"
    extra: dict[str, str] = field(default_factory=dict, kw_only=True, compare=False)

    def to_text(self) -> ControlText:
        positional: list[str] = []
        fields: dict[str, str] = {}
        for f in dataclasses.fields(self):
            if "key" not in f.metadata:
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            text = _format_value(f.metadata["kind"], value)
            if f.metadata["positional"]:
                positional.append(text)
            else:
                fields[f.metadata["key"]] = text
        for key, value in self.extra.items():
            fields.setdefault(key, value)
        return ControlText(self.NAME, tuple(positional), fields)

    def encode(self) -> bytes:
        return encode_control(self.to_text())


def _format_value(kind: str, value: Any) -> str:
    if kind == "bool":
        return "1" if value else "0"
    if kind == "list":
        return ",".join(value)
    if kind in ("int", "state"):
        return str(int(value))
    return str(value)


def _parse_value(message: str, key: str, kind: str, raw: str) -> Any:
    if kind in ("int", "state"):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > UINT32_MAX:
            raise RemoteProtocolError(
                ErrorCode.BAD_FIELD, f"{message}: {key}={raw[:20]!r} is not an unsigned integer"
            )
        if kind == "state":
            try:
                return StreamState(int(raw))
            except ValueError:
                raise RemoteProtocolError(
                    ErrorCode.BAD_FIELD, f"{message}: unknown stream state code {raw}"
                ) from None
        return int(raw)
    if kind == "bool":
        if raw not in ("0", "1"):
            raise RemoteProtocolError(ErrorCode.BAD_FIELD, f"{message}: {key}={raw!r} not 0/1")
        return raw == "1"
    if kind == "list":
        return tuple(item for item in raw.split(",") if item)
    return raw


# --- Viewer to Primary -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(Message):
    NAME: ClassVar[str] = "HELLO"
    DIRECTION: ClassVar[Direction] = "viewer->primary"
    client: str = _field("client", default="viewer")
    version: int = _field("version", "int", default=2)


@dataclass(frozen=True, slots=True)
class Auth(Message):
    NAME: ClassVar[str] = "AUTH"
    DIRECTION: ClassVar[Direction] = "viewer->primary"
    response: str = _field("response")


@dataclass(frozen=True, slots=True)
class Caps(Message):
    NAME: ClassVar[str] = "CAPS"
    DIRECTION: ClassVar[Direction] = "viewer->primary"
    codecs: tuple[str, ...] = _field("codecs", "list", default=("h264",))
    max_width: int | None = _field("max_width", "int", required=False, default=None)
    max_height: int | None = _field("max_height", "int", required=False, default=None)
    hw_decode: bool | None = _field("hw_decode", "bool", required=False, default=None)
    decoder: str | None = _field("decoder", required=False, default=None)


@dataclass(frozen=True, slots=True)
class SetStream(Message):
    NAME: ClassVar[str] = "SET_STREAM"
    DIRECTION: ClassVar[Direction] = "viewer->primary"
    codec: str = _field("codec", default="h264")
    width: int | None = _field("width", "int", required=False, default=None)
    height: int | None = _field("height", "int", required=False, default=None)
    fps: int | None = _field("fps", "int", required=False, default=None)
    bitrate: int | None = _field("bitrate", "int", required=False, default=None)
    profile: str | None = _field("profile", required=False, default=None)


@dataclass(frozen=True, slots=True)
class ReqKeyframe(Message):
    NAME: ClassVar[str] = "REQ_KEYFRAME"
    DIRECTION: ClassVar[Direction] = "viewer->primary"
    epoch: int = _field("epoch", "int")


# --- Both directions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    NAME: ClassVar[str] = "HEARTBEAT"


@dataclass(frozen=True, slots=True)
class Bye(Message):
    NAME: ClassVar[str] = "BYE"
    reason: str | None = _field("reason", required=False, default=None)


# --- Primary to Viewer -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proto(Message):
    NAME: ClassVar[str] = "PROTO"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    version: int = _field("version", "int")


@dataclass(frozen=True, slots=True)
class AuthChallenge(Message):
    NAME: ClassVar[str] = "AUTH_CHALLENGE"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    nonce: str = _field("nonce")


@dataclass(frozen=True, slots=True)
class AuthOk(Message):
    NAME: ClassVar[str] = "AUTH_OK"
    DIRECTION: ClassVar[Direction] = "primary->viewer"


@dataclass(frozen=True, slots=True)
class AuthFail(Message):
    NAME: ClassVar[str] = "AUTH_FAIL"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    reason: str = _field("reason", default="bad_response")


@dataclass(frozen=True, slots=True)
class Session(Message):
    NAME: ClassVar[str] = "SESSION"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    id: str = _field("id")


@dataclass(frozen=True, slots=True)
class StreamStateMessage(Message):
    NAME: ClassVar[str] = "STREAM_STATE"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    state: StreamState = _field("state", "state", positional=True)
    epoch: int = _field("epoch", "int")


@dataclass(frozen=True, slots=True)
class StreamEventMessage(Message):
    NAME: ClassVar[str] = "STREAM_EVENT"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    event: str = _field("event", positional=True)
    epoch: int = _field("epoch", "int")


@dataclass(frozen=True, slots=True)
class StreamAccepted(Message):
    NAME: ClassVar[str] = "STREAM_ACCEPTED"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    epoch: int | None = _field("epoch", "int", required=False, default=None)
    codec: str = _field("codec", default="h264")
    width: int | None = _field("width", "int", required=False, default=None)
    height: int | None = _field("height", "int", required=False, default=None)
    fps: int | None = _field("fps", "int", required=False, default=None)
    bitrate: int | None = _field("bitrate", "int", required=False, default=None)
    profile: str | None = _field("profile", required=False, default=None)
    backend: str | None = _field("backend", required=False, default=None)


@dataclass(frozen=True, slots=True)
class StreamRejected(Message):
    NAME: ClassVar[str] = "STREAM_REJECTED"
    DIRECTION: ClassVar[Direction] = "primary->viewer"
    reason: str = _field("reason")
    epoch: int | None = _field("epoch", "int", required=False, default=None)


@dataclass(frozen=True, slots=True)
class Error(Message):
    NAME: ClassVar[str] = "ERROR"
    code: str = _field("code")
    reason: str = _field("reason", required=False, default="")


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """A message whose name this version does not know: ignored by both peers (VER-3)."""

    text: ControlText = field(default_factory=lambda: ControlText("UNKNOWN"))

    @property
    def name(self) -> str:
        return self.text.name

    def to_text(self) -> ControlText:
        return self.text


MESSAGE_TYPES: tuple[type[Message], ...] = (
    Hello, Auth, Caps, SetStream, ReqKeyframe, Heartbeat, Bye, Proto, AuthChallenge, AuthOk,
    AuthFail, Session, StreamStateMessage, StreamEventMessage, StreamAccepted, StreamRejected,
    Error,
)
BY_NAME: dict[str, type[Message]] = {cls.NAME: cls for cls in MESSAGE_TYPES}


def from_text(text: ControlText) -> Message:
    cls = BY_NAME.get(text.name)
    if cls is None:
        return UnknownMessage(text=text)
    kwargs: dict[str, Any] = {}
    known: set[str] = set()
    positional = list(text.positional)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "key" not in meta:
            continue
        raw: str | None
        if meta["positional"]:
            raw = positional.pop(0) if positional else None
        else:
            known.add(meta["key"])
            raw = text.fields.get(meta["key"])
        if raw is None:
            # Defaults exist for building messages; on the wire a required field is required.
            if meta["required"]:
                raise RemoteProtocolError(
                    ErrorCode.BAD_FIELD, f"{text.name}: missing required field {meta['key']!r}"
                )
            continue
        kwargs[f.name] = _parse_value(text.name, meta["key"], meta["kind"], raw)
    extra = {k: v for k, v in text.fields.items() if k not in known}
    return cls(**kwargs, extra=extra)


def decode_message(payload: bytes) -> Message:
    """CONTROL payload bytes to a typed message; raises RemoteProtocolError only."""
    return from_text(decode_control(payload))
