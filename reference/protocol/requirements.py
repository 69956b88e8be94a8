"""The requirement catalogue: every rule ID, its rule and how it can be observed.

The same set as PROTOCOL.md's catalogue (a test keeps the two equal). The
`observed` column says what evidence decides the rule:

- WIRE: the frames on the connection alone (a pcap or the wire recorder).
- TELEMETRY: only the Viewer's own report of its states and decisions
  (PROTOCOL.md, "Viewer telemetry").
- BOTH: wire and telemetry together (timing between a frame and a reaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Observed(str, Enum):
    WIRE = "wire"
    TELEMETRY = "telemetry"
    BOTH = "wire+telemetry"


class Level(str, Enum):
    """RFC 2119 strength of a rule (PROTOCOL.md 1.2): what a FAIL does to a certificate."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Side(str, Enum):
    PRIMARY = "primary"
    VIEWER = "viewer"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    group: str
    rule: str
    observed: Observed
    side: Side
    # Every rule in the catalogue is a MUST unless LEVELS below says otherwise.
    level: Level = Level.MUST

    @property
    def family(self) -> str:
        return self.id.split("-")[0]


def _r(id_: str, group: str, side: Side, observed: Observed, rule: str) -> Requirement:
    return Requirement(id_, group, rule, observed, side)


W, T, B = Observed.WIRE, Observed.TELEMETRY, Observed.BOTH
P, V, X = Side.PRIMARY, Side.VIEWER, Side.BOTH

CATALOGUE: tuple[Requirement, ...] = (
    _r("VER-1", "Version negotiation", V, W,
       "The Viewer's first message is HELLO naming its role and the highest version it speaks."),
    _r("VER-2", "Version negotiation", P, W,
       "The Primary answers PROTO|version=V with the version it chose; a version-1 Primary "
       "sends neither PROTO nor STREAM_STATE."),
    _r("VER-3", "Version negotiation", X, B,
       "Unknown message names and unknown key=value fields are ignored, never fatal."),
    _r("VER-4", "Version negotiation", V, T,
       "With version 2 STREAM_STATE is authoritative and the Viewer infers nothing; with "
       "version 1 it infers (LEGACY-1)."),
    _r("AUTH-1", "Authentication", P, W,
       "A fresh random nonce on every connection; the Viewer answers HMAC-SHA256 of it under "
       "the shared secret."),
    _r("AUTH-2", "Authentication", P, W,
       "A wrong answer gets AUTH_FAIL and the connection is closed; no stream data or state "
       "reaches an unauthenticated peer."),
    _r("AUTH-3", "Authentication", P, W,
       "A peer that has not authenticated 5 s after connect is disconnected by the Primary."),
    _r("AUTH-4", "Authentication", P, W,
       "Before AUTH_OK nothing but HELLO and AUTH is acted on."),
    _r("AUTH-5", "Authentication", P, W,
       "A nonce is single-use: replaying an earlier answer fails."),
    _r("SNAP-1", "Snapshot after auth", P, W,
       "Right after AUTH_OK and SESSION the Primary sends STREAM_STATE|<code>|epoch=N on "
       "every connection, before any other stream message."),
    _r("SNAP-2", "Snapshot after auth", P, W,
       "The snapshot is the truth at that instant: RECONFIGURING mid-reconfiguration, ACTIVE "
       "with the current epoch on a running stream, STOPPED with no stream."),
    _r("SNAP-3", "Snapshot after auth", V, B,
       "After a (re)connect the Viewer does not enter STREAMING before the snapshot "
       "(version 2)."),
    _r("NEG-1", "Negotiation", P, W,
       "Negotiation happens only after authentication; no CSD or media before "
       "STREAM_ACCEPTED."),
    _r("NEG-2", "Negotiation", X, B,
       "STREAM_ACCEPTED carries the epoch it accepted, so a reordered accept is still tied "
       "to an epoch and cannot roll the Viewer back."),
    _r("NEG-3", "Negotiation", P, W,
       "An unsatisfiable SET_STREAM gets STREAM_REJECTED and the session stays up."),
    _r("NEG-4", "Negotiation", V, W,
       "A Viewer sends no stream request before it may: no CAPS or SET_STREAM before "
       "AUTH_OK, no REQ_KEYFRAME before STREAM_ACCEPTED."),
    _r("STATE-1", "State authority", P, W,
       "State codes are numeric (1 ACTIVE, 2 RECONFIGURING, 3 PAUSED, 4 STOPPED) in "
       "STREAM_STATE|<code>|epoch=N."),
    _r("STATE-2", "State authority", V, B,
       "The Primary drives RECONFIGURING, ACTIVE, PAUSED, STOPPED; the Viewer drives only "
       "DISCONNECTED and RECOVERING and never declares STREAMING on its own."),
    _r("STATE-3", "State authority", V, T,
       "STREAMING requires decoder started, surface ready, CSD applied, a keyframe of the "
       "current epoch decoded and the server ACTIVE; losing one leaves STREAMING at once."),
    _r("STATE-4", "State authority", V, B,
       "On RECONFIGURING the Viewer pauses decoding, flushes, and waits for CSD and a "
       "keyframe of the new epoch."),
    _r("STATE-5", "State authority", V, B,
       "On PAUSED the Viewer keeps the socket alive and neither requests keyframes nor "
       "reconnects."),
    _r("STATE-6", "State authority", V, B,
       "The server's state wins: no flapping between RECOVERING and STREAMING while the "
       "server says ACTIVE (at most two transitions per stall episode), and no RECOVERING "
       "while it says PAUSED or STOPPED."),
    _r("STATE-7", "State authority", V, T,
       "No decoder and no frame buffers before the handshake completes; released on "
       "DISCONNECTED."),
    _r("STATE-8", "State authority", P, W,
       "Every change of the stream state is announced to each authenticated version-2 "
       "connection as STREAM_STATE; a STREAM_EVENT never stands in for it."),
    _r("EVT-1", "State authority", V, B,
       "A STREAM_EVENT alone never changes the Viewer's state; a Viewer that receives no "
       "events still reaches the right state."),
    _r("EVT-2", "State authority", P, W,
       "Each announced change of the stream state is followed by its matching STREAM_EVENT "
       "(RESUMED after PAUSED, RECONFIG_DONE after RECONFIGURING, ...)."),
    _r("EPOCH-1", "Epochs", P, W,
       "The epoch increments on every reconfiguration (resolution or bitrate tier, encoder "
       "or camera restart, recording start, surface recreated, codec backend fallback)."),
    _r("EPOCH-2", "Epochs", P, W, "Every CSD, VIDEO and AUDIO frame carries its epoch."),
    _r("EPOCH-3", "Epochs", V, T,
       "The Viewer drops every frame whose epoch is not the current one: a stale-epoch frame "
       "is never decoded or rendered."),
    _r("EPOCH-4", "Epochs", V, B,
       "Control messages tied to an older epoch are ignored, so reordered control messages "
       "cannot roll the Viewer back."),
    _r("KEY-1", "Keyframes", P, W,
       "ACTIVE is sent only after a keyframe of the epoch was transmitted, at the first "
       "start, after every reconfiguration and on resume: not when the encoder starts, not "
       "with STREAM_ACCEPTED."),
    _r("KEY-2", "Keyframes", P, W,
       "REQ_KEYFRAME is answered with a keyframe within 1 s, or the encoder is restarted "
       "(RECONFIGURING, new epoch)."),
    _r("KEY-3", "Keyframes", P, W,
       "A late joiner receives CSD and a keyframe within 1 s of its STREAM_ACCEPTED."),
    _r("KEY-4", "Keyframes", P, W,
       "A non-keyframe VIDEO is sent to a Viewer only after that Viewer was sent a keyframe "
       "of its epoch (since STREAM_ACCEPTED and since the stream last left ACTIVE)."),
    _r("HB-1", "Heartbeat and watchdogs", X, W, "Each side sends a heartbeat every 2 s."),
    _r("HB-2", "Heartbeat and watchdogs", X, B,
       "6 s of silence from the peer means the connection is dead: the Viewer goes "
       "DISCONNECTED and reconnects, the Primary frees the session."),
    _r("WD-1", "Heartbeat and watchdogs", V, B,
       "While ACTIVE, no decodable frame for 1.5-2.5 s puts the Viewer in RECOVERING and it "
       "sends REQ_KEYFRAME|epoch=N."),
    _r("WD-2", "Heartbeat and watchdogs", V, W,
       "The keyframe request is retried every 1 s, at most 5 retries; then the Viewer "
       "reconnects."),
    _r("WD-3", "Heartbeat and watchdogs", V, B,
       "A decoded keyframe of the current epoch brings the Viewer from RECOVERING back to "
       "STREAMING."),
    _r("RECON-1", "Heartbeat and watchdogs", V, B,
       "After DISCONNECTED the Viewer reconnects with bounded, jittered backoff, redoes the "
       "whole handshake and reuses no decoder state; after AUTH_FAIL it does not reconnect "
       "on its own."),
    _r("LEGACY-1", "Legacy", V, B,
       "Against a version-1 Primary (no STREAM_STATE within the fallback timeout) the Viewer "
       "infers: CSD and keyframe lead to STREAMING. Against version 2 it never does."),
    _r("LEGACY-2", "Legacy", P, W,
       "A version-2 Primary serves a version-1 Viewer the old way: no version-2-only "
       "messages."),
    _r("FRAME-1", "Framing and bad input", X, W,
       "Every frame has the fixed header (type, flags, epoch, sequence, timestamp, length); "
       "the maximum payload is enforced before any allocation."),
    _r("FRAME-2", "Framing and bad input", X, W,
       "A malformed header, oversize length, invalid UTF-8 or unparsable control message gets "
       "a clear ERROR and a closed connection, never a crash, hang or unbounded memory."),
)

# The rules PROTOCOL.md words with SHOULD or MAY (section 8 gives each entry's level).
LEVELS: dict[str, Level] = {
    "EVT-2": Level.SHOULD,  # "... SHOULD follow it with the matching STREAM_EVENT"
}

CATALOGUE = tuple(
    Requirement(r.id, r.group, r.rule, r.observed, r.side, LEVELS.get(r.id, Level.MUST))
    for r in CATALOGUE
)

BY_ID: dict[str, Requirement] = {r.id: r for r in CATALOGUE}


def requirement(id_: str) -> Requirement:
    try:
        return BY_ID[id_]
    except KeyError:
        raise KeyError(f"unknown requirement ID {id_!r}") from None
