"""Everything that decides a state lives in this module, for both roles.

The Viewer's seven states, the Primary's connection and stream states, the
transition tables, who may drive each transition (STATE-2), the STREAMING
predicate (STATE-3) and the epoch rules (EPOCH-3, EPOCH-4). The connection
classes, the proxies and the checkers consult these definitions instead of
re-deriving them, and STATE_MACHINE.md is printed from the tables here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class StreamState(IntEnum):
    """The Primary's stream state; numeric codes on the wire (STATE-1)."""

    ACTIVE = 1
    RECONFIGURING = 2
    PAUSED = 3
    STOPPED = 4


class ViewerState(str, Enum):
    DISCONNECTED = "DISCONNECTED"
    SOCKET_CONNECTED = "SOCKET_CONNECTED"
    AUTHENTICATING = "AUTHENTICATING"
    NEGOTIATING = "NEGOTIATING"
    RECONFIGURING = "RECONFIGURING"
    STREAMING = "STREAMING"
    RECOVERING = "RECOVERING"


class ViewerTrigger(str, Enum):
    TCP_CONNECTED = "tcp_connected"
    CHALLENGED = "auth_challenge_received"
    AUTH_OK = "auth_ok"
    AUTH_FAIL = "auth_fail"
    STREAM_ACCEPTED = "stream_accepted"
    STREAMING_READY = "streaming_conditions_hold"
    CONDITIONS_LOST = "streaming_condition_lost"
    STALL = "stall_watchdog"
    CLIENT_BACKGROUND = "client_background"
    DISCONNECT = "disconnect"


class Driver(str, Enum):
    """Who may cause a transition (STATE-2)."""

    TRANSPORT = "transport"
    PRIMARY = "primary"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Transition:
    source: ViewerState
    trigger: ViewerTrigger
    target: ViewerState
    driver: Driver
    action: str


_V = ViewerState
_T = ViewerTrigger
_ANY_CONNECTED = (
    _V.SOCKET_CONNECTED, _V.AUTHENTICATING, _V.NEGOTIATING,
    _V.RECONFIGURING, _V.STREAMING, _V.RECOVERING,
)

VIEWER_TRANSITIONS: tuple[Transition, ...] = (
    Transition(_V.DISCONNECTED, _T.TCP_CONNECTED, _V.SOCKET_CONNECTED, Driver.TRANSPORT,
               "send HELLO with the highest version spoken; allocate nothing"),
    Transition(_V.SOCKET_CONNECTED, _T.CHALLENGED, _V.AUTHENTICATING, Driver.PRIMARY,
               "send AUTH with the HMAC of the nonce"),
    Transition(_V.AUTHENTICATING, _T.AUTH_OK, _V.NEGOTIATING, Driver.PRIMARY,
               "start heartbeats; send CAPS and SET_STREAM"),
    Transition(_V.AUTHENTICATING, _T.AUTH_FAIL, _V.DISCONNECTED, Driver.PRIMARY,
               "close the socket; no automatic reconnect with the same secret"),
    Transition(_V.NEGOTIATING, _T.STREAM_ACCEPTED, _V.RECONFIGURING, Driver.PRIMARY,
               "create the decoder; wait for CSD and a keyframe of the epoch"),
    Transition(_V.RECONFIGURING, _T.STREAMING_READY, _V.STREAMING, Driver.PRIMARY,
               "render: every STREAMING condition holds, the server said ACTIVE"),
    Transition(_V.RECONFIGURING, _T.STALL, _V.RECOVERING, Driver.VIEWER,
               "server ACTIVE but no keyframe within the stall timeout: send REQ_KEYFRAME"),
    Transition(_V.STREAMING, _T.STALL, _V.RECOVERING, Driver.VIEWER,
               "send REQ_KEYFRAME|epoch=N, retry every interval"),
    Transition(_V.STREAMING, _T.CLIENT_BACKGROUND, _V.RECOVERING, Driver.VIEWER,
               "the app went to the background (the seed's CLIENT_BG): release the surface, "
               "drop video, request a keyframe when back in the foreground"),
    Transition(_V.RECONFIGURING, _T.CLIENT_BACKGROUND, _V.RECOVERING, Driver.VIEWER,
               "server ACTIVE while in the background: nothing to show until the foreground"),
    Transition(_V.STREAMING, _T.CONDITIONS_LOST, _V.RECONFIGURING, Driver.PRIMARY,
               "stop rendering; on a new epoch flush the decoder and wait for CSD + keyframe"),
    Transition(_V.RECOVERING, _T.STREAMING_READY, _V.STREAMING, Driver.PRIMARY,
               "a keyframe of the current epoch was decoded under ACTIVE"),
    Transition(_V.RECOVERING, _T.CONDITIONS_LOST, _V.RECONFIGURING, Driver.PRIMARY,
               "stop keyframe requests; the server's state wins"),
    *(
        Transition(state, _T.DISCONNECT, _V.DISCONNECTED, Driver.VIEWER,
                   "close the socket, release decoder and buffers, schedule reconnect")
        for state in _ANY_CONNECTED
    ),
)

_TABLE: dict[tuple[ViewerState, ViewerTrigger], Transition] = {
    (t.source, t.trigger): t for t in VIEWER_TRANSITIONS
}


def viewer_transition(state: ViewerState, trigger: ViewerTrigger) -> Transition | None:
    """The transition the table allows, or None when the trigger does nothing in `state`."""
    return _TABLE.get((state, trigger))


# States in which the Viewer holds a decoder (STATE-7: none before the handshake).
DECODER_STATES = frozenset({_V.RECONFIGURING, _V.STREAMING, _V.RECOVERING})
# States in which media frames may be passed to the decoder at all (NEG-1).
MEDIA_STATES = DECODER_STATES


@dataclass(frozen=True, slots=True)
class StreamingConditions:
    """The STATE-3 predicate: STREAMING is valid only while every field is true."""

    decoder_started: bool
    surface_ready: bool
    csd_applied: bool
    keyframe_decoded: bool
    server_active: bool

    def missing(self) -> tuple[str, ...]:
        return tuple(name for name in self.__slots__ if not getattr(self, name))

    def hold(self) -> bool:
        return not self.missing()


# --- Epochs ------------------------------------------------------------------


class EpochRelation(str, Enum):
    STALE = "stale"
    CURRENT = "current"
    NEWER = "newer"


def relate_epoch(current: int | None, incoming: int) -> EpochRelation:
    if current is None or incoming > current:
        return EpochRelation.NEWER
    if incoming < current:
        return EpochRelation.STALE
    return EpochRelation.CURRENT


def frame_epoch_acceptable(current: int | None, frame_epoch: int) -> bool:
    """EPOCH-3: only frames of exactly the current epoch may be decoded or rendered."""
    return current is not None and frame_epoch == current


def control_epoch_acceptable(current: int | None, message_epoch: int) -> bool:
    """EPOCH-4: a control message of an older epoch is ignored, so it cannot roll back."""
    return relate_epoch(current, message_epoch) is not EpochRelation.STALE


# --- The Primary -------------------------------------------------------------


class PrimaryConnectionState(str, Enum):
    AWAIT_HELLO = "AWAIT_HELLO"
    CHALLENGED = "CHALLENGED"
    AUTHENTICATED = "AUTHENTICATED"
    ACCEPTED = "ACCEPTED"
    CLOSED = "CLOSED"


_P = PrimaryConnectionState

PRIMARY_CONNECTION_TRANSITIONS: tuple[tuple[PrimaryConnectionState, str, PrimaryConnectionState, str], ...] = (  # noqa: E501
    (_P.AWAIT_HELLO, "HELLO", _P.CHALLENGED, "send PROTO (version 2 only) and AUTH_CHALLENGE"),
    (_P.CHALLENGED, "AUTH correct", _P.AUTHENTICATED,
     "send AUTH_OK, SESSION, then the STREAM_STATE snapshot (version 2)"),
    (_P.CHALLENGED, "AUTH wrong or replayed", _P.CLOSED, "send AUTH_FAIL and close"),
    (_P.AUTHENTICATED, "SET_STREAM satisfiable", _P.ACCEPTED,
     "send STREAM_ACCEPTED|epoch=N, then CSD and a keyframe within 1 s"),
    (_P.AUTHENTICATED, "SET_STREAM unsatisfiable", _P.AUTHENTICATED, "send STREAM_REJECTED"),
    (_P.AWAIT_HELLO, "auth timeout", _P.CLOSED, "send ERROR|code=timeout and close"),
    (_P.CHALLENGED, "auth timeout", _P.CLOSED, "send ERROR|code=timeout and close"),
    (_P.AUTHENTICATED, "heartbeat timeout", _P.CLOSED, "free the session"),
    (_P.ACCEPTED, "heartbeat timeout", _P.CLOSED, "free the session"),
)

# The stream state machine the Primary drives (STATE-2): source -> allowed targets.
STREAM_TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    StreamState.STOPPED: frozenset({StreamState.RECONFIGURING}),
    StreamState.RECONFIGURING: frozenset(
        {StreamState.ACTIVE, StreamState.RECONFIGURING, StreamState.PAUSED, StreamState.STOPPED}
    ),
    StreamState.ACTIVE: frozenset(
        {StreamState.RECONFIGURING, StreamState.PAUSED, StreamState.STOPPED}
    ),
    StreamState.PAUSED: frozenset(
        {StreamState.ACTIVE, StreamState.RECONFIGURING, StreamState.STOPPED}
    ),
}

# Which stream transitions need a new epoch (EPOCH-1): entering RECONFIGURING always does.
def needs_new_epoch(source: StreamState, target: StreamState) -> bool:
    return target is StreamState.RECONFIGURING
