"""Viewer telemetry: the Viewer's own report of its states and frame decisions.

Rules like EPOCH-3 and STATE-3 cannot be decided from the wire: a stale frame
that arrived may or may not have been decoded. A Viewer that writes these
records (JSON Lines, one object per line) makes them checkable; the reference
Viewer writes them from its core events, a third-party Viewer writes the same
format. PROTOCOL.md ("Viewer telemetry") is the normative description.

Every record has `t` (seconds, float; CLOCK_MONOTONIC when the Viewer runs on
the harness host, so records line up with the wire trace), `event`, and
`viewer` (an identifier of the Viewer instance). The kinds:

    hello     implementation, version            first record of a file
    state     state, previous, reason, epoch, server_state
    frame     action ("decode" | "drop"), type, epoch, seq, key, reason, current_epoch
    decoded   epoch, seq, key                    a picture came out of the decoder
    rendered  epoch, frame, stream_epoch, seq    epoch/frame read back from the pixels
    decoder   action ("create" | "flush" | "release"), epoch
    keyframe_request  epoch, attempt
    connection  action ("connect" | "closed"), reason
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from reference.protocol.events import (
    CloseSocket,
    CreateDecoder,
    Event,
    FlushDecoder,
    FrameDropped,
    KeyframeRequestSent,
    MediaToDecode,
    ReleaseDecoder,
    StateChanged,
)

Record = dict[str, Any]
# Further apart than this (seconds), a Viewer's `t` and the harness's clock are two clocks
# (another host, PROTOCOL.md 9.3), which the harness aligns by an offset.
SAME_CLOCK_LIMIT = 1.0


class RecordKind(str, Enum):
    """The `event` of a telemetry record (PROTOCOL.md 9.2)."""

    HELLO = "hello"
    STATE = "state"
    FRAME = "frame"
    DECODED = "decoded"
    RENDERED = "rendered"
    DECODER = "decoder"
    KEYFRAME_REQUEST = "keyframe_request"
    CONNECTION = "connection"
    AUDIO = "audio"


class FrameAction(str, Enum):
    DECODE = "decode"
    DROP = "drop"


class DecoderAction(str, Enum):
    CREATE = "create"
    FLUSH = "flush"
    RELEASE = "release"


class ConnectionAction(str, Enum):
    CONNECT = "connect"
    CLOSED = "closed"
    FAILED = "failed"

REQUIRED: dict[str, tuple[str, ...]] = {
    "hello": ("implementation", "version"),
    "state": ("state", "previous", "cause"),
    "frame": ("action", "type", "epoch", "seq"),
    "decoded": ("epoch",),
    "rendered": ("epoch", "frame", "stream_epoch"),
    "decoder": ("action",),
    "keyframe_request": ("epoch", "attempt"),
    "connection": ("action",),
    "audio": ("action",),
}


class TelemetryError(ValueError):
    """A telemetry line that does not follow the format; says which line and why."""


def records_from_event(event: Event, now: float, viewer: str) -> list[Record]:
    """The telemetry a reference Viewer writes for one core event."""
    base: Record = {"t": now, "viewer": viewer}
    if isinstance(event, StateChanged):
        return [{**base, "event": "state", "state": event.state.value,
                 "previous": event.previous.value, "cause": event.cause.value,
                 "reason": event.reason, "epoch": event.epoch,
                 "server_state": int(event.server_state) if event.server_state else None}]
    if isinstance(event, MediaToDecode | FrameDropped):
        frame = event.frame
        record: Record = {**base, "event": "frame", "type": frame.type.name, "epoch": frame.epoch,
                          "seq": frame.sequence, "key": frame.is_keyframe}
        if isinstance(event, FrameDropped):
            record.update(action="drop", cause=event.cause.value, reason=event.reason,
                          current_epoch=event.current_epoch)
        else:
            record.update(action="decode")
        return [record]
    if isinstance(event, CreateDecoder | FlushDecoder):
        action = "create" if isinstance(event, CreateDecoder) else "flush"
        return [{**base, "event": "decoder", "action": action, "epoch": event.epoch}]
    if isinstance(event, ReleaseDecoder):
        return [{**base, "event": "decoder", "action": "release", "epoch": None}]
    if isinstance(event, KeyframeRequestSent):
        return [{**base, "event": "keyframe_request", "epoch": event.epoch,
                 "attempt": event.attempt}]
    if isinstance(event, CloseSocket):
        return [{**base, "event": "connection", "action": "closed", "reason": event.reason}]
    return []


def dumps(record: Record) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=False)


def parse_line(line: str, *, where: str = "telemetry") -> Record:
    """One telemetry line to a record; TelemetryError names the place and the fault."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TelemetryError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise TelemetryError(f"{where}: a record must be a JSON object")
    kind = record.get("event")
    t = record.get("t")
    if not isinstance(t, int | float):
        raise TelemetryError(f"{where}: missing or non-numeric 't'")
    if kind not in REQUIRED:
        return record  # unknown kinds are ignored, like unknown messages (VER-3)
    missing = [k for k in REQUIRED[kind] if k not in record]
    if kind == RecordKind.FRAME.value and record.get("action") == FrameAction.DROP.value:
        missing += [] if "cause" in record else ["cause"]
    if missing:
        raise TelemetryError(f"{where}: {kind} record lacks {', '.join(missing)}")
    return record


def read_telemetry(text: str, *, source: str = "telemetry") -> list[Record]:
    return [
        parse_line(line, where=f"{source}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
