"""FRAME: well-formed frames from each peer, and bad input answered with ERROR and a close."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.sides import (
    receiver_judged,
    receiver_name,
    reply_direction,
    sender_judged,
)
from harness.checks.wire import Conn, WireFrame
from harness.trace import P2V, Record
from reference.protocol.errors import ErrorCode
from reference.protocol.messages import Error


@dataclass(slots=True)
class _BadInput:
    conn: Conn
    t: float
    direction: str
    code: str
    answered: str | None = None  # the ERROR's code, once the receiver sent one
    settled: bool = False


class _Answering(Monitor):
    """Bad input waiting for the receiver's ERROR and close, on the tap next to the receiver."""

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.within = float(self.ctx.param("close_within", 1.0)) + self.tolerance
        self.pending: dict[Conn, list[_BadInput]] = {}

    def expect_answer(self, conn: Conn, t: float, direction: str, code: str) -> None:
        item = _BadInput(conn, t, direction, code)
        self.pending.setdefault(conn, []).append(item)
        self.ctx.deadline(t, self.within, partial(self._due, item))

    def answers(self, frame: WireFrame) -> None:
        """An ERROR from the receiver of pending bad input: the first one is its answer."""
        if not isinstance(frame.message, Error):
            return
        for item in self.pending.get(frame.conn, []):
            if (
                frame.dir == reply_direction(item.direction)
                and item.answered is None
                and self.in_time(item.t, self.within, frame.t)
            ):
                item.answered = frame.message.code

    def _due(self, item: _BadInput, now: float) -> None:
        if not item.settled:
            self.settle(item, closed=None)

    def on_end(self, conn: Conn) -> None:
        for item in self.pending.pop(conn, []):
            if not item.settled:
                closed = conn.closed
                in_time = closed is not None and self.in_time(item.t, self.within, closed)
                self.settle(item, closed=closed if in_time else None)

    def settle(self, item: _BadInput, closed: float | None) -> None:
        item.settled = True
        self.check()
        self.judge(item, closed)

    def judge(self, item: _BadInput, closed: float | None) -> None:
        raise NotImplementedError


@monitor
class Frame1(_Answering):
    """FRAME-1: the fixed 24-byte header on every frame; the payload limit enforced from it.

    The sender's half: a tap decodes every frame with the core's FrameDecoder, so a
    `wire_error` on the tap next to the sender (Primary-to-Viewer on the Primary
    side, Viewer-to-Primary on the Viewer side, either on a foreign capture) is a
    frame that peer sent without a valid header; every connection that ends with
    frames and no such error is one conforming item. The receiver's half: an
    oversize length (`wire_error` code `oversize`) on the tap next to the receiver
    must be refused from the header alone, without waiting for the payload it
    promises: the connection closes within `close_within` (default 1 s) plus the
    tolerance, and an ERROR, if the receiver sends one, names `oversize` (another
    code means it did not judge the length). Whether an ERROR is sent at all is
    FRAME-2's rule. Evidence: the wire error; the wrong code; the open connection.
    """

    requirement = "FRAME-1"
    checks = "framed connection(s) and oversize header(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.framed: set[Conn] = set()  # connections with frames and no error of the sender
        self.broken: set[Conn] = set()

    def on_frame(self, frame: WireFrame) -> None:
        if frame.conn not in self.broken:
            self.framed.add(frame.conn)
        self.answers(frame)
        self.skip_plain_media(frame)  # one frame makes a connection framed; ERRORs are control

    def on_wire_error(self, conn: Conn, record: Record) -> None:
        direction, code = str(record.get("dir", "")), str(record.get("code", ""))
        t = float(record["t"])
        if sender_judged(conn, direction):
            self.check()
            self.broken.add(conn)
            self.framed.discard(conn)
            self.fail(t, f"{'Primary' if direction == P2V else 'Viewer'} sent an undecodable "
                      f"frame ({code})", conn.where)
        if code == ErrorCode.OVERSIZE.value and receiver_judged(conn, direction):
            self.expect_answer(conn, t, direction, code)

    def judge(self, item: _BadInput, closed: float | None) -> None:
        who = receiver_name(item.direction)
        if item.answered is not None and item.answered != ErrorCode.OVERSIZE.value:
            self.fail(item.t, f"{who} answered an oversize header with ERROR "
                      f"code={item.answered}", item.conn.where)
        elif closed is None:
            self.fail(item.t, f"{who} kept the connection open after an oversize header",
                      item.conn.where)
        else:
            self.note(item.t, f"{who}: oversize refused, closed {closed - item.t:.2f} s later",
                      item.conn.where)

    def on_end(self, conn: Conn) -> None:
        super().on_end(conn)
        if conn in self.framed:
            self.check()
        self.framed.discard(conn)
        self.broken.discard(conn)


@monitor
class Frame2(_Answering):
    """FRAME-2: malformed input gets a clear ERROR|code=... and a closed connection, promptly.

    Judged for whichever side receives the input, on the tap next to it (a Primary
    on Primary-side connections, a Viewer on Viewer-side ones). Malformed input is
    a `wire_error` the tap recorded (bad magic, frame type or flags, oversize
    length, ...) or a CONTROL frame whose text the core's parser refuses (invalid
    UTF-8, an unparsable message or field). Within `close_within` (default 1 s) plus
    the tolerance the receiver must send an ERROR on the connection, after the bad
    input in wire order, and the connection must be closed. The ERROR's code is
    not compared with the tap's: a receiver may name the first fault it met.
    Input whose deadline lies after the end of the trace is not judged. Evidence:
    the input and the ERROR (or its absence) and the close.
    """

    requirement = "FRAME-2"
    checks = "malformed input(s)"
    reads_plain_media = False  # malformed control text and the ERROR that answers it

    def on_frame(self, frame: WireFrame) -> None:
        self.answers(frame)
        if frame.malformed and receiver_judged(frame.conn, frame.dir):
            self.expect_answer(frame.conn, frame.t, frame.dir, ErrorCode.BAD_MESSAGE.value)

    def on_wire_error(self, conn: Conn, record: Record) -> None:
        direction = str(record.get("dir", ""))
        if receiver_judged(conn, direction):
            self.expect_answer(conn, float(record["t"]), direction, str(record.get("code", "?")))

    def judge(self, item: _BadInput, closed: float | None) -> None:
        who = receiver_name(item.direction)
        if item.answered is None:
            self.fail(item.t, f"{who} sent no ERROR for malformed input ({item.code})",
                      item.conn.where)
        elif closed is None:
            self.fail(item.t, f"{who} did not close within {self.within:.1f} s of malformed "
                      f"input ({item.code})", item.conn.where)
        else:
            self.note(item.t, f"{item.code} -> ERROR|code={item.answered}, closed", item.conn.where)
