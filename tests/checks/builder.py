"""Hand-written traces for the monitor tests: one small conforming and one broken per rule.

A `Wire` writes the records a tap writes for one connection (frames with their
control text encoded by the protocol core, opens, closes, wire errors); a
`Viewer` writes telemetry records as PROTOCOL.md section 9 specifies. Times are
explicit: each case says exactly when everything happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.trace import P2V, V2P, Record
from reference.protocol.causes import Cause
from reference.protocol.frames import FrameFlags, FrameType
from reference.protocol.messages import Message
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind


@dataclass
class Trace:
    records: list[Record] = field(default_factory=list)

    def add(self, record: Record) -> None:
        self.records.append(record)

    def wire(self, tap: str = "primary_side", conn: str = "c1") -> Wire:
        return Wire(self, tap, conn)

    def viewer(self, viewer: str = "v1") -> Viewer:
        return Viewer(self, viewer)

    def action(self, t: float, action: str, **params: Any) -> None:
        self.add({"t": t, "kind": "action", "action": action, **params})

    def primary(self, t: float, state: StreamState, epoch: int) -> None:
        self.add(
            {"t": t, "kind": "primary", "what": "state", "stream_state": state.name, "epoch": epoch}
        )


@dataclass
class Wire:
    trace: Trace
    tap: str
    conn: str
    seq: dict[str, int] = field(default_factory=lambda: {P2V: 0, V2P: 0})

    def open(self, t: float) -> Wire:
        self.trace.add({"t": t, "kind": "conn", "tap": self.tap, "conn": self.conn,
                        "event": "open", "peer": "127.0.0.1:1", "reason": ""})
        return self

    def close(self, t: float, reason: str = "") -> Wire:
        self.trace.add({"t": t, "kind": "conn", "tap": self.tap, "conn": self.conn,
                        "event": "close", "reason": reason})
        return self

    def half_close(self, t: float, side: str) -> Wire:
        """One side of the relayed connection sent its EOF (`client`: the Viewer's side)."""
        self.trace.add({"t": t, "kind": "conn", "tap": self.tap, "conn": self.conn,
                        "event": "half_close", "side": side})
        return self

    def _frame(self, t: float, direction: str, kind: FrameType, epoch: int, key: bool,
               length: int, text: str | None = None) -> None:
        self.seq[direction] += 1
        record: Record = {
            "t": t, "kind": "frame", "tap": self.tap, "conn": self.conn, "dir": direction,
            "type": kind.name, "flags": int(FrameFlags.KEYFRAME) if key else 0, "key": key,
            "epoch": epoch, "seq": self.seq[direction], "ts": int(t * 1e6), "len": length,
        }
        if text is not None:
            record["msg"] = text
        self.trace.add(record)

    def p2v(self, t: float, message: Message | str) -> Wire:
        text = message if isinstance(message, str) else message.encode().decode()
        self._frame(t, P2V, FrameType.CONTROL, 0, False, len(text), text)
        return self

    def v2p(self, t: float, message: Message | str) -> Wire:
        text = message if isinstance(message, str) else message.encode().decode()
        self._frame(t, V2P, FrameType.CONTROL, 0, False, len(text), text)
        return self

    def media(self, t: float, kind: FrameType, epoch: int, key: bool = False,
              direction: str = P2V) -> Wire:
        self._frame(t, direction, kind, epoch, key and kind is FrameType.VIDEO, 1000)
        return self

    def csd(self, t: float, epoch: int) -> Wire:
        return self.media(t, FrameType.CSD, epoch)

    def video(self, t: float, epoch: int, key: bool = False) -> Wire:
        return self.media(t, FrameType.VIDEO, epoch, key)

    def wire_error(self, t: float, direction: str, code: str) -> Wire:
        self.trace.add({"t": t, "kind": "wire_error", "tap": self.tap, "conn": self.conn,
                        "dir": direction, "code": code, "error": code})
        return self


@dataclass
class Viewer:
    trace: Trace
    viewer: str
    state: ViewerState = ViewerState.DISCONNECTED

    def record(self, t: float, kind: RecordKind, **fields: Any) -> Viewer:
        self.trace.add({"t": t, "kind": "telemetry", "viewer": self.viewer,
                        "event": kind.value, **fields})
        return self

    def to(self, t: float, state: ViewerState, cause: Cause, *, epoch: int | None = None,
           server_state: StreamState | None = None) -> Viewer:
        self.record(t, RecordKind.STATE, state=state.value, previous=self.state.value,
                    cause=cause.value, reason=cause.value, epoch=epoch,
                    server_state=int(server_state) if server_state is not None else None)
        self.state = state
        return self

    def decoder(self, t: float, action: str, epoch: int | None = None) -> Viewer:
        return self.record(t, RecordKind.DECODER, action=action, epoch=epoch)

    def decode(self, t: float, kind: FrameType, epoch: int, key: bool = False,
               seq: int = 0) -> Viewer:
        return self.record(t, RecordKind.FRAME, action="decode", type=kind.name, epoch=epoch,
                           seq=seq, key=key)

    def drop(self, t: float, kind: FrameType, epoch: int, cause: Cause, current: int | None,
             seq: int = 0) -> Viewer:
        return self.record(t, RecordKind.FRAME, action="drop", type=kind.name, epoch=epoch,
                           seq=seq, key=False, cause=cause.value, reason=cause.value,
                           current_epoch=current)

    def decoded(self, t: float, epoch: int, key: bool = False, seq: int = 0) -> Viewer:
        return self.record(t, RecordKind.DECODED, epoch=epoch, key=key, seq=seq)

    def rendered(self, t: float, epoch: int | None, stream_epoch: int | None,
                 frame: int = 0) -> Viewer:
        return self.record(t, RecordKind.RENDERED, epoch=epoch, frame=frame,
                           stream_epoch=stream_epoch, audited=True)

    def keyframe_request(self, t: float, epoch: int, attempt: int) -> Viewer:
        return self.record(t, RecordKind.KEYFRAME_REQUEST, epoch=epoch, attempt=attempt)
