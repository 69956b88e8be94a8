"""Why a Viewer changed state or dropped a frame: the enumerated `cause` of its telemetry.

A telemetry `reason` is free text for people; a checker that matched substrings
of it would give a third-party Viewer that words its reasons differently another
verdict. Every `state` record and every dropped `frame` record therefore carries
one of these causes (PROTOCOL.md section 9.2 lists them, a test keeps the two
equal), and the checkers decide from the cause alone.
"""

from __future__ import annotations

from enum import Enum


class Cause(str, Enum):
    # --- state changes: the handshake --------------------------------------
    TCP_CONNECTED = "tcp_connected"
    AUTH_CHALLENGE = "auth_challenge"
    AUTH_OK = "auth_ok"
    STREAM_ACCEPTED = "stream_accepted"
    # --- state changes: the STREAMING predicate (STATE-3) ------------------
    CONDITIONS_MET = "conditions_met"
    SERVER_STATE = "server_state"
    NEW_EPOCH = "new_epoch"
    DECODER_LOST = "decoder_lost"
    SURFACE_LOST = "surface_lost"
    STALL = "stall"
    CLIENT_BACKGROUND = "client_background"
    # --- state changes: DISCONNECTED ----------------------------------------
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    KEYFRAME_RETRIES_EXHAUSTED = "keyframe_retries_exhausted"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    SERVER_CLOSED = "server_closed"
    SERVER_ERROR = "server_error"
    SERVER_BYE = "server_bye"
    PROTOCOL_ERROR = "protocol_error"
    AUTH_FAILED = "auth_failed"
    VIEWER_STOPPED = "viewer_stopped"
    SOCKET_ERROR = "socket_error"
    # --- frame drops (7.3) ---------------------------------------------------
    STALE_EPOCH = "stale_epoch"
    FUTURE_EPOCH = "future_epoch"
    NOT_NEGOTIATED = "not_negotiated"
    NO_CSD = "no_csd"
    AWAITING_KEYFRAME = "awaiting_keyframe"
    IN_BACKGROUND = "in_background"


# What each cause means: printed into PROTOCOL.md section 9.2.
CAUSE_MEANING: dict[Cause, str] = {
    Cause.TCP_CONNECTED: "the TCP connection is up (-> SOCKET_CONNECTED)",
    Cause.AUTH_CHALLENGE: "AUTH_CHALLENGE received (-> AUTHENTICATING)",
    Cause.AUTH_OK: "AUTH_OK received (-> NEGOTIATING)",
    Cause.STREAM_ACCEPTED: "STREAM_ACCEPTED received (-> RECONFIGURING)",
    Cause.CONDITIONS_MET: "every STREAMING condition holds (-> STREAMING)",
    Cause.SERVER_STATE: "a STREAM_STATE other than ACTIVE was received",
    Cause.NEW_EPOCH: "a newer epoch was adopted (STREAM_STATE, STREAM_ACCEPTED, legacy CSD)",
    Cause.DECODER_LOST: "the decoder failed or was lost",
    Cause.SURFACE_LOST: "the render surface went away",
    Cause.STALL: "no decodable frame for the stall timeout (WD-1, -> RECOVERING)",
    Cause.CLIENT_BACKGROUND: "the client went to the background (7.12, -> RECOVERING)",
    Cause.HEARTBEAT_TIMEOUT: "nothing received for the heartbeat timeout (HB-2)",
    Cause.KEYFRAME_RETRIES_EXHAUSTED: "every keyframe retry went unanswered (WD-2)",
    Cause.HANDSHAKE_TIMEOUT: "the handshake did not complete in time",
    Cause.SERVER_CLOSED: "the Primary closed the connection",
    Cause.SERVER_ERROR: "the Primary sent ERROR",
    Cause.SERVER_BYE: "the Primary sent BYE",
    Cause.PROTOCOL_ERROR: "the Viewer received malformed input and closed (FRAME-2)",
    Cause.AUTH_FAILED: "AUTH_FAIL received; no automatic reconnect",
    Cause.VIEWER_STOPPED: "the Viewer was told to stop; no reconnect",
    Cause.SOCKET_ERROR: "the socket failed (reset, unreachable)",
    Cause.STALE_EPOCH: "drop: the frame's epoch is older than the current one (EPOCH-3)",
    Cause.FUTURE_EPOCH: "drop: the frame's epoch is newer than the current one (EPOCH-3)",
    Cause.NOT_NEGOTIATED: "drop: media before STREAM_ACCEPTED",
    Cause.NO_CSD: "drop: no CSD of this epoch yet",
    Cause.AWAITING_KEYFRAME: "drop: waiting for a keyframe of this epoch",
    Cause.IN_BACKGROUND: "drop: video while the client is in the background (7.12)",
}

# Disconnects after which the Viewer does not reconnect on its own (RECON-1).
FINAL_CAUSES = frozenset({Cause.AUTH_FAILED, Cause.VIEWER_STOPPED})

# Causes of a state change: one of these in every `state` record.
STATE_CAUSES = frozenset(
    c for c in Cause if c not in {
        Cause.STALE_EPOCH, Cause.FUTURE_EPOCH, Cause.NOT_NEGOTIATED, Cause.NO_CSD,
        Cause.AWAITING_KEYFRAME, Cause.IN_BACKGROUND,
    }
)
# Causes of a dropped frame: one of these in every `frame` record with action "drop".
DROP_CAUSES = frozenset(Cause) - STATE_CAUSES
# Leaving STREAMING for RECONFIGURING is justified by one of these (STATE-6).
RECONFIGURE_CAUSES = frozenset(
    {Cause.SERVER_STATE, Cause.NEW_EPOCH, Cause.DECODER_LOST, Cause.SURFACE_LOST}
)


_BY_VALUE = {c.value: c for c in Cause}


def parse_cause(value: object) -> Cause | None:
    """A record's `cause`, or None when it is absent or not one of the list."""
    return _BY_VALUE.get(value) if isinstance(value, str) else None
