"""What the connection state machines hand to the code that drives them.

Small immutable objects, as in h11: the caller acts on them (close a socket,
feed a decoder, open a new connection) and reports back through the
connection's methods.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference.protocol.causes import Cause
from reference.protocol.errors import ProtocolError
from reference.protocol.frames import Frame
from reference.protocol.messages import Caps, Message, SetStream
from reference.protocol.states import StreamState, ViewerState


@dataclass(frozen=True, slots=True)
class Event:
    pass


# --- Shared ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """Every control message that arrived, acted on or not: the trace wants them all."""

    message: Message
    acted_on: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class CloseSocket(Event):
    """Close the TCP connection now (after flushing `data_to_send()`)."""

    reason: str
    error: ProtocolError | None = None


# --- Viewer ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    previous: ViewerState
    state: ViewerState
    reason: str
    epoch: int | None
    server_state: StreamState | None
    cause: Cause


@dataclass(frozen=True, slots=True)
class ServerStateChanged(Event):
    state: StreamState
    epoch: int


@dataclass(frozen=True, slots=True)
class CreateDecoder(Event):
    epoch: int | None


@dataclass(frozen=True, slots=True)
class FlushDecoder(Event):
    """Drop every decoder buffer: the epoch changed (STATE-4)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class ReleaseDecoder(Event):
    pass


@dataclass(frozen=True, slots=True)
class MediaToDecode(Event):
    """A media frame of the current epoch that may be decoded now."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class FrameDropped(Event):
    frame: Frame
    reason: str
    current_epoch: int | None
    cause: Cause


@dataclass(frozen=True, slots=True)
class KeyframeRequestSent(Event):
    epoch: int
    attempt: int  # 0 for the first request, then 1..keyframe_retries


@dataclass(frozen=True, slots=True)
class StreamEventReceived(Event):
    event: str
    epoch: int


@dataclass(frozen=True, slots=True)
class StreamRejectedReceived(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ReconnectDue(Event):
    """The backoff expired: open a new TCP connection and call `connection_made`."""

    attempt: int


# --- Primary -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ViewerAuthenticated(Event):
    session_id: str
    version: int


@dataclass(frozen=True, slots=True)
class AuthRejected(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class StreamRequested(Event):
    request: SetStream
    caps: Caps | None


@dataclass(frozen=True, slots=True)
class KeyframeRequested(Event):
    epoch: int
