"""Just enough HTTP/1.x for Toxiproxy's JSON API, following the rules of the server
Toxiproxy runs on (Go's net/http, configured in `api.go`) wherever a client can see them:

* keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
  `Connection: keep-alive`, so a 1.0 client reading to EOF is not left hanging;
* the request line, version and headers are checked as net/http does: a 1.1
  request without `Host` is a 400, an unknown major version a 505, an unknown
  transfer coding a 501; methods are case-sensitive tokens (`get` is not `GET`);
* the request line and headers may take up to net/http's `DefaultMaxHeaderBytes`
  (1 MiB) plus the 4 KiB it reads beyond it; more is a 431;
* `api.go`'s timeouts: the whole request must arrive within `ReadTimeout` (15 s,
  from the connection's start or the next request's first byte), an idle
  keep-alive connection waits `IdleTimeout` (60 s) for it, and the response
  must be taken within `WriteTimeout` (30 s). A client that misses one is
  closed without a reply, as net/http does.

Content-Length or chunked request bodies, `Expect: 100-continue`. No TLS, no
pipelining guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

# net/http's DefaultMaxHeaderBytes; its reader gives up 4096 bytes further on.
GO_MAX_HEADER_BYTES = 1 << 20
HEADER_LIMIT = GO_MAX_HEADER_BYTES + 4096
MAX_BODY_BYTES = 16 * 1024 * 1024
# How long an error reply waits for the client to read it before the socket is closed
# (net/http's rstAvoidanceDelay): closing with unread input would send an RST instead.
LINGER_S = 0.5

_TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")  # net/http's ParseHTTPVersion: one digit each


@dataclass(frozen=True)
class Timeouts:
    """Toxiproxy's `http.Server` settings (`api.go`: read_timeout, wait_timeout, IdleTimeout)."""

    read_s: float = 15.0
    write_s: float = 30.0
    idle_s: float = 60.0


TOXIPROXY_TIMEOUTS = Timeouts()


@dataclass
class Request:
    method: str
    path: str  # percent-decoded per segment by the router, raw here
    headers: dict[str, str]
    body: bytes
    version: str = "HTTP/1.1"

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class RequestError(Exception):
    """A request net/http refuses before any handler sees it, with the reply it sends.

    net/http writes these replies itself: `HTTP/1.1 <status> <reason>[: <detail>]`, a
    plain-text label, `Connection: close`, and the same words as the body.
    """

    def __init__(self, status: int, detail: str = "", body: str | None = None) -> None:
        reason = http.HTTPStatus(status).phrase
        self.line = f"{status} {reason}: {detail}" if detail else f"{status} {reason}"
        super().__init__(self.line)
        self.body = self.line if body is None else body

    def encode(self) -> bytes:
        return (
            f"HTTP/1.1 {self.line}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{self.body}"
        ).encode("latin-1")


BAD_REQUEST = RequestError(400)  # net/http names no cause for most malformed requests


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers, checked as net/http's readRequest checks them."""
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target, _, version = rest.partition(" ")
    if not method or not version or not set(method) <= _TOKEN:
        raise BAD_REQUEST
    if not (target.startswith("/") or "://" in target or target == "*"):
        raise BAD_REQUEST  # net/http: "invalid URI for request"
    parsed = _VERSION.fullmatch(version)
    if parsed is None:
        raise BAD_REQUEST
    if parsed[1] != "1":
        raise RequestError(505, "unsupported protocol version")
    headers: dict[str, str] = {}
    hosts = 0
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= _TOKEN:
            raise BAD_REQUEST
        key = name.lower()
        hosts += key == "host"
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if hosts > 1:
        raise RequestError(400, "too many Host headers")
    if version != "HTTP/1.0" and hosts == 0:
        raise RequestError(400, "missing required Host header")
    return method, target, version, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], version: str) -> bytes:
    coding = headers.get("transfer-encoding") if version != "HTTP/1.0" else None
    if coding is not None:
        if coding.lower() != "chunked":
            raise RequestError(501, body="Unsupported transfer encoding")
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
            if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
                raise BAD_REQUEST
            size = int(size_text, 16)
            if size == 0:
                # Trailers, if any, end with an empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise BAD_REQUEST
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length_text = headers.get("content-length", "0")
    if not (length_text.isascii() and length_text.isdigit()) or int(length_text) > MAX_BODY_BYTES:
        raise BAD_REQUEST
    length = int(length_text)
    return await reader.readexactly(length) if length else b""


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_byte: bytes
) -> Request:
    try:
        head = first_byte + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise RequestError(431) from exc
    method, target, version, headers = _parse_head(head)
    if headers.get("expect", "").lower() == "100-continue" and version != "HTTP/1.0":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        path = urlsplit(target).path
    except ValueError as exc:
        raise BAD_REQUEST from exc
    body = await _read_body(reader, headers, version)
    return Request(method, path, headers, body, version)


def _encode(response: Response, request: Request, keep_alive: bool) -> bytes:
    reason = http.HTTPStatus(response.status).phrase
    version = "HTTP/1.0" if request.version == "HTTP/1.0" else "HTTP/1.1"
    lines = [f"{version} {response.status} {reason}"]
    if response.status != 204:
        if response.content_type is not None:
            lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    # What net/http says: 1.1 announces a close, 1.0 announces a kept connection.
    if keep_alive and version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    elif not keep_alive and version == "HTTP/1.1":
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if response.status == 204 else head + response.body


async def _reply_and_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: bytes
) -> None:
    """Send `reply`, end our side, and let the client read it before the socket goes."""
    writer.write(reply)
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_S):
            await writer.drain()
            while await reader.read(65536):
                pass


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    timeouts: Timeouts = TOXIPROXY_TIMEOUTS,
) -> None:
    """Serve requests on one connection until either side ends it or a timeout passes.

    `reader` must have been created with `limit=HEADER_LIMIT`.
    """
    loop = asyncio.get_running_loop()
    first_byte = b""
    try:
        while True:
            try:
                async with asyncio.timeout(timeouts.read_s):
                    request = await _read_request(reader, writer, first_byte)
            except RequestError as error:
                await _reply_and_close(reader, writer, error.encode())
                return
            except asyncio.IncompleteReadError as exc:
                if exc.partial or first_byte:
                    await _reply_and_close(reader, writer, BAD_REQUEST.encode())
                return  # otherwise the client closed between requests
            except asyncio.LimitOverrunError:  # a chunk-size line without an end
                await _reply_and_close(reader, writer, BAD_REQUEST.encode())
                return
            except TimeoutError:
                return  # net/http closes a client that is too slow without a word
            write_deadline = loop.time() + timeouts.write_s
            keep_alive = request.keep_alive
            response = await handler(request)
            writer.write(_encode(response, request, keep_alive))
            try:
                async with asyncio.timeout_at(write_deadline):
                    await writer.drain()
            except TimeoutError:
                writer.transport.abort()
                return
            if not keep_alive:
                return
            try:
                async with asyncio.timeout(timeouts.idle_s):
                    first_byte = await reader.read(1)
            except TimeoutError:
                return
            if not first_byte:
                return
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def path_segments(path: str) -> list[str]:
    return [unquote(segment) for segment in path.split("/")[1:]]
