"""The trace: everything the harness asserts is read from it.

A trace is JSON Lines, one record per line, each with `t` (seconds on the
harness host's CLOCK_MONOTONIC) and `kind`:

    frame      a frame seen by a wire tap: tap, conn, dir ("v2p" | "p2v"), type, flags,
               key, epoch, seq, ts (µs), len, and msg (the control text) for CONTROL
    wire_error a tap could not decode a direction any more: tap, conn, dir, code, error
    conn       a tap's connection opened or closed: tap, conn, event, peer, reason
    fault      a fault applied: source ("toxiproxy" | "frame_proxy"), fault, and its params
    telemetry  a Viewer telemetry record (PROTOCOL.md), with `viewer`
    primary    a Primary state change: stream_state, epoch, backend, what
    action     a scenario action: action, and its params
    note       free text from the scenario engine
    cpu_wait   the host kept the run's processes from a CPU: since, wait (s), threads
               (harness/cpu_wait.py; timing rules do not count that wait)

Writers append from several asyncio tasks and threads; a lock keeps lines whole.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from reference.protocol.frames import Frame, FrameType

Record = dict[str, Any]
V2P = "v2p"
P2V = "p2v"

# The taps a scenario puts next to each peer: one beside the Primary, one per Viewer.
PRIMARY_SIDE = "primary_side"
VIEWER_SIDE = "viewer_side"
# The `action` record a scenario writes when it starts stopping the peers: what comes
# after it is the shutdown, not the peers' behaviour (HB-1 judges open tails up to it).
STOP_PEERS = "stop_peers"


def viewer_tap_name(viewer: str) -> str:
    return f"{VIEWER_SIDE}:{viewer}"


def is_harness_tap(name: str) -> bool:
    return any(name == side or name.startswith(side + ":") for side in (PRIMARY_SIDE, VIEWER_SIDE))


def frame_record(tap: str, conn: str, direction: str, frame: Frame, t: float) -> Record:
    record: Record = {
        "t": t,
        "kind": "frame",
        "tap": tap,
        "conn": conn,
        "dir": direction,
        "type": frame.type.name,
        "flags": int(frame.flags),
        "key": frame.is_keyframe,
        "epoch": frame.epoch,
        "seq": frame.sequence,
        "ts": frame.timestamp_us,
        "len": len(frame.payload),
    }
    if frame.type is FrameType.CONTROL:
        record["msg"] = frame.payload.decode("utf-8", errors="replace")
    return record


class TraceWriter:
    """Appends records to a JSON Lines file and keeps them in memory for the checkers."""

    def __init__(self, path: Path | None = None, *, keep: bool = True) -> None:
        self.path = path
        self.keep = keep
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._listeners: list[Any] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def write(self, record: Record) -> None:
        record.setdefault("t", self.now())
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self.keep:
                self.records.append(record)
            if self._file is not None:
                self._file.write(line + "\n")
            listeners = list(self._listeners)
        for listener in listeners:
            listener(record)

    def emit(self, kind: str, **fields: Any) -> None:
        self.write({"t": self.now(), "kind": kind, **fields})

    def subscribe(self, listener: Any) -> None:
        """Call `listener(record)` for every record written from now on (waits on traces)."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Any) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def records_from(self, index: int) -> list[Record]:
        """The records written since the first `index` ones: for readers that keep up."""
        with self._lock:
            return self.records[index:]

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class TraceFormatError(ValueError):
    pass


def iter_trace(path: Path) -> Iterator[Record]:
    """The records of a stored trace one at a time, in the order they were written."""
    # Bytes and orjson: reading is most of `harness check`'s time on a long trace.
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise TraceFormatError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(record, dict) or "kind" not in record or "t" not in record:
                raise TraceFormatError(f"{path}:{number}: a record needs 't' and 'kind'")
            if not isinstance(record["t"], int | float):
                raise TraceFormatError(f"{path}:{number}: 't' is not a number")
            yield record


def read_trace(path: Path) -> list[Record]:
    return list(iter_trace(path))


@dataclass
class Trace:
    """A read-only view over records with the selections the checkers need."""

    records: list[Record]
    meta: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> Iterator[Record]:
        return (r for r in self.records if r["kind"] == kind)

    def frames(
        self, *, tap: str | None = None, conn: str | None = None, direction: str | None = None
    ) -> list[Record]:
        return [
            r
            for r in self.of("frame")
            if (tap is None or r["tap"] == tap)
            and (conn is None or r["conn"] == conn)
            and (direction is None or r["dir"] == direction)
        ]

    def taps(self) -> list[str]:
        return sorted({r["tap"] for r in self.of("frame")} | {r["tap"] for r in self.of("conn")})

    def connections(self, tap: str) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            if r.get("tap") == tap and r["kind"] in ("frame", "conn"):
                seen.setdefault(r["conn"], None)
        return list(seen)

    def telemetry(self, viewer: str | None = None) -> list[Record]:
        return [r for r in self.of("telemetry") if viewer is None or r.get("viewer") == viewer]

    def viewers(self) -> list[str]:
        return sorted({r["viewer"] for r in self.of("telemetry") if "viewer" in r})


def load(records: Iterable[Record]) -> Trace:
    return Trace(sorted(records, key=lambda r: r["t"]))
