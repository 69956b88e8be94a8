"""Viewer telemetry over the network (PROTOCOL.md 9.5): a Viewer on a phone has no file here.

One listening socket takes both forms, told apart by the first bytes a
connection sends:

- **TCP line protocol** (`tcp://HOST:PORT`): the records as JSON Lines, one per
  line, for as long as the connection stays open; a bad line is noted in the
  trace and skipped (the sender gets no answer on this one-way stream).
- **HTTP** (`http://HOST:PORT/telemetry`): `POST /telemetry` with JSON Lines as
  the body; 204 when every line was taken, 400 with a one-line reason naming
  the first bad line (the good lines are kept).

Each line is read with the protocol core's `parse_line`, as the file tail reads
it; a record without `viewer` gets the testee's viewer id. A Viewer on another
host has another monotonic clock: when the first record's `t` is more than
SAME_CLOCK_LIMIT from the harness's clock at its arrival, every record is shifted
by that first (arrival - t), so that the Viewer's own intervals are kept exactly
and its first record lands when it arrived (9.3).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from harness.scenarios.network import url_host
from harness.trace import Record, TraceWriter
from reference.protocol.telemetry import SAME_CLOCK_LIMIT, TelemetryError, parse_line

MAX_LINE = 64 * 1024  # one record; a longer line is refused
MAX_BODY = 4 * 1024 * 1024  # one HTTP POST
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")
ROUTE = "/telemetry"


class ClockAlignment:
    """Maps one Viewer's monotonic `t` onto the trace's clock (PROTOCOL.md 9.3).

    One offset, fixed by the first record: a later, smaller delay would be a
    better estimate, but moving the offset would shift records against each
    other, and the telemetry rules compare a Viewer's records with each other.
    """

    def __init__(self) -> None:
        self.offset: float | None = None  # decided by the first record

    def align(self, t: float, arrived: float) -> float:
        if self.offset is None:
            self.offset = arrived - t if abs(arrived - t) > SAME_CLOCK_LIMIT else 0.0
        return t + self.offset


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.reason}"


class TelemetryInlet:
    """Takes one Viewer's telemetry records over TCP or HTTP into the trace."""

    def __init__(
        self,
        viewer_id: str,
        trace: TraceWriter,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise: str | None = None,
    ) -> None:
        self.viewer_id = viewer_id
        self.trace = trace
        self.host = host
        self.requested_port = port
        self.advertise = advertise or host
        self.clock = ClockAlignment()
        self.records = 0  # taken into the trace
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def tcp_url(self) -> str:
        return f"tcp://{url_host(self.advertise)}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{url_host(self.advertise)}:{self.port}{ROUTE}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.requested_port, limit=MAX_LINE
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Closed, not cancelled: each reader sees the end and its handler returns.
            for writer in self._connections.values():
                writer.transport.abort()
            if self._connections:
                await asyncio.wait(set(self._connections), timeout=5)
            await self._server.wait_closed()
            self._server = None

    # --- one line ---------------------------------------------------------------

    def take(self, line: str, where: str, number: int) -> BadLine | None:
        """Parse one line into the trace; the problem with it, if it was refused."""
        if not line.strip():
            return None
        arrived = self.trace.now()
        try:
            record = parse_line(line, where=f"{where}:{number}")
        except TelemetryError as exc:
            self.trace.emit("note", text=str(exc))
            return BadLine(number, str(exc).removeprefix(f"{where}:{number}: "))
        record.setdefault("viewer", self.viewer_id)
        record["t"] = self.clock.align(float(record["t"]), arrived)
        self._write(record)
        return None

    def _write(self, record: Record) -> None:
        self.records += 1
        self.trace.write({**record, "kind": "telemetry"})

    # --- connections --------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        where = f"telemetry from {peer[0]}:{peer[1]}" if peer else "telemetry"
        try:
            first = await reader.readline()
            if first.startswith(HTTP_METHODS):
                await self._http(first, reader, writer, where)
            else:
                await self._lines(first, reader, where)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except (asyncio.LimitOverrunError, ValueError):
            self.trace.emit("note", text=f"{where}: a line longer than {MAX_LINE} bytes; closed")
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _lines(self, first: bytes, reader: asyncio.StreamReader, where: str) -> None:
        number, line = 0, first
        while line:
            if not line.endswith(b"\n"):
                return  # a record cut by the close: not a whole line, not taken
            number += 1
            self.take(line.decode("utf-8", errors="replace"), where, number)
            line = await reader.readline()

    async def _http(
        self, request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> None:
        method, _, rest = request.decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0]
        headers: dict[str, str] = {}
        while line := (await reader.readline()).decode("latin-1").strip():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if path.split("?", 1)[0] != ROUTE:
            return await _answer(writer, 404, f"no route {path}; POST {ROUTE}")
        if method != "POST":
            return await _answer(writer, 405, f"{method} not allowed; POST {ROUTE}")
        length_text = headers.get("content-length")
        if length_text is None or not length_text.isdigit():
            return await _answer(writer, 411, "a Content-Length is required")
        length = int(length_text)
        if length > MAX_BODY:
            return await _answer(writer, 413, f"a body of at most {MAX_BODY} bytes")
        body = (await reader.readexactly(length)).decode("utf-8", errors="replace")
        bad: BadLine | None = None
        for number, line in enumerate(body.splitlines(), start=1):
            problem = self.take(line, where, number)
            bad = bad or problem
        if bad is not None:
            return await _answer(writer, 400, str(bad))
        await _answer(writer, 204, "")


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reason = {204: "No Content", 400: "Bad Request", 404: "Not Found",
              405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large"}
    body = (text + "\n").encode() if text else b""
    writer.write(
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
