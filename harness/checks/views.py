"""Protocol-level views over a trace: connections with parsed messages, Viewer episodes.

Control texts are parsed with the protocol core's own parser, so a checker
and the peers never disagree about what a message says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.trace import P2V, V2P, Record, Trace
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.messages import Message, UnknownMessage, decode_message

PRIMARY_SIDE = "primary_side"
VIEWER_SIDE = "viewer_side"


@dataclass
class Msg:
    t: float
    dir: str
    name: str
    message: Message | None
    record: Record

    def field(self, key: str) -> Any:
        return getattr(self.message, key, None) if self.message is not None else None


@dataclass
class ConnView:
    tap: str
    conn: str
    frames: list[Record] = field(default_factory=list)
    messages: list[Msg] = field(default_factory=list)
    opened: float | None = None
    closed: float | None = None
    close_reason: str = ""
    wire_errors: list[Record] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.tap}/{self.conn}"

    def control(self, direction: str | None = None, name: str | None = None) -> list[Msg]:
        return [
            m
            for m in self.messages
            if (direction is None or m.dir == direction) and (name is None or m.name == name)
        ]

    def first(self, name: str, direction: str) -> Msg | None:
        return next((m for m in self.messages if m.name == name and m.dir == direction), None)

    def media(self, direction: str = P2V) -> list[Record]:
        return [f for f in self.frames if f["dir"] == direction and f["type"] != "CONTROL"]

    @property
    def end(self) -> float | None:
        if self.closed is not None:
            return self.closed
        return self.frames[-1]["t"] if self.frames else self.opened

    @property
    def viewer_version(self) -> int | None:
        hello = self.first("HELLO", V2P)
        return hello.field("version") if hello else None

    @property
    def speaks_v2(self) -> bool:
        """Version 2 on this connection: the Primary sent PROTO|version=2."""
        proto = self.first("PROTO", P2V)
        return proto is not None and (proto.field("version") or 0) >= 2

    @property
    def authenticated_at(self) -> float | None:
        ok = self.first("AUTH_OK", P2V)
        return ok.t if ok else None

    def index(self, record: Record) -> int:
        """Position in this connection's frames: order decides where timestamps tie."""
        return next(i for i, f in enumerate(self.frames) if f is record)

    def before(self, record: Record, direction: str | None = None) -> list[Record]:
        cut = self.index(record)
        return [f for f in self.frames[:cut] if direction is None or f["dir"] == direction]

    def after(self, record: Record, direction: str | None = None) -> list[Record]:
        cut = self.index(record)
        return [f for f in self.frames[cut + 1 :] if direction is None or f["dir"] == direction]


def connections(trace: Trace, tap: str) -> list[ConnView]:
    views: dict[str, ConnView] = {}
    for record in trace.records:
        if record.get("tap") != tap:
            continue
        kind = record["kind"]
        view = views.setdefault(record["conn"], ConnView(tap, record["conn"]))
        if kind == "frame":
            view.frames.append(record)
            if record["type"] == "CONTROL":
                view.messages.append(_parse(record))
        elif kind == "conn":
            if record.get("event") == "open":
                view.opened = record["t"]
            elif record.get("event") == "close":
                view.closed = record["t"]
                view.close_reason = record.get("reason", "")
        elif kind == "wire_error":
            view.wire_errors.append(record)
    return list(views.values())


def _parse(record: Record) -> Msg:
    text = record.get("msg", "")
    parsed: Message | None
    try:
        parsed = decode_message(text.encode("utf-8"))
        name = parsed.name if isinstance(parsed, UnknownMessage) else parsed.NAME
    except RemoteProtocolError:
        parsed, name = None, "<malformed>"
    return Msg(record["t"], record["dir"], name, parsed, record)


def pick_tap(trace: Trace, preferred: str, requested: str | None = None) -> str | None:
    """The tap a rule reads: the one asked for, the preferred side, or the only one."""
    taps = trace.taps()
    if requested is not None:
        return requested if requested in taps else None
    exact = [t for t in taps if t == preferred or t.startswith(preferred + ":")]
    if exact:
        return exact[0]
    return taps[0] if len(taps) == 1 else None


def side_taps(trace: Trace, preferred: str) -> list[str]:
    """Every tap of one side (there is one viewer-side tap per Viewer).

    A trace from elsewhere (one capture of one link, named anything) serves both sides;
    a harness trace without this side's taps has none to offer.
    """
    taps = [t for t in trace.taps() if t == preferred or t.startswith(preferred + ":")]
    if taps:
        return taps
    all_taps = trace.taps()
    harness_names = (PRIMARY_SIDE, VIEWER_SIDE)
    foreign = len(all_taps) == 1 and not all_taps[0].startswith(harness_names)
    return all_taps if foreign else []


@dataclass
class Episode:
    """One Viewer connection as the Viewer reports it: from connect to DISCONNECTED."""

    viewer: str
    index: int
    records: list[Record] = field(default_factory=list)

    @property
    def start(self) -> float:
        return float(self.records[0]["t"])

    @property
    def end(self) -> float:
        return float(self.records[-1]["t"])

    def states(self) -> list[Record]:
        return [r for r in self.records if r.get("event") == "state"]

    def of(self, event: str) -> list[Record]:
        return [r for r in self.records if r.get("event") == event]

    def position(self, record: Record) -> int:
        return next(i for i, r in enumerate(self.records) if r is record)

    def after(self, record: Record, event: str | None = None) -> list[Record]:
        """Records reported after `record` (report order: timestamps can tie)."""
        rest = self.records[self.position(record) + 1 :]
        return [r for r in rest if event is None or r.get("event") == event]

    def before(self, record: Record, event: str | None = None) -> list[Record]:
        head = self.records[: self.position(record)]
        return [r for r in head if event is None or r.get("event") == event]

    def next_state(self, record: Record) -> Record | None:
        return next(iter(self.after(record, "state")), None)


def episodes(trace: Trace, viewer: str) -> list[Episode]:
    out: list[Episode] = []
    current: Episode | None = None
    for record in trace.telemetry(viewer):
        starts = record.get("event") == "state" and record.get("state") == "SOCKET_CONNECTED"
        if starts or current is None:
            current = Episode(viewer, len(out))
            out.append(current)
        current.records.append(record)
    return [e for e in out if e.states()]


def viewer_tap(trace: Trace, viewer: str) -> str | None:
    taps = trace.taps()
    for name in (f"{VIEWER_SIDE}:{viewer}", VIEWER_SIDE):
        if name in taps:
            return name
    return None


# A tap logs a connection once it has also reached upstream, which can be a few
# milliseconds after the Viewer logged its own connect; reconnects are further apart.
OPEN_SLACK = 0.05


def conn_at(views: list[ConnView], t: float, slack: float = OPEN_SLACK) -> ConnView | None:
    """The connection that was open at time t: the latest opened by t (plus `slack`)."""
    best: ConnView | None = None
    best_start = float("-inf")
    for view in views:
        start = (
            view.opened
            if view.opened is not None
            else (view.frames[0]["t"] if view.frames else None)
        )
        if start is not None and start <= t + slack and start >= best_start:
            best, best_start = view, start
    return best
