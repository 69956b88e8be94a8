"""The optional test-control interface (PROTOCOL.md section 13): a tiny HTTP/1.1 server.

One request per connection, JSON bodies and answers. The routes belong to the peer; this
module only reads a request, hands it over and writes the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

Answer = tuple[int, dict[str, Any]]
Handler = Callable[[str, str, dict[str, Any]], Awaitable[Answer]]
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 500: "Internal Server Error"}


class BadRequest(Exception):
    """400 with this one-line message."""


class Conflict(Exception):
    """409: the peer cannot take this action in its present state."""


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any]]:
    request = await asyncio.wait_for(reader.readline(), 5)
    parts = request.decode("latin-1").split()
    if len(parts) < 2:
        raise BadRequest("malformed request line")
    method, target = parts[0], parts[1]
    length = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    raw = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    path = target.split("?", 1)[0].rstrip("/") or "/"
    return method, path, body


def serve(handler: Handler, log: Callable[[str], None]) -> Callable[..., Awaitable[None]]:
    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = path = "?"
        try:
            method, path, body = await _read_request(reader)
            status, answer = await handler(method, path, body)
        except BadRequest as exc:
            status, answer = 400, {"error": str(exc)}
        except Conflict as exc:
            status, answer = 409, {"error": str(exc)}
        except (TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            status, answer = 400, {"error": f"bad request: {exc!r}"}
        log(f"control {method} {path} -> {status} {json.dumps(answer)[:160]}")
        payload = json.dumps(answer).encode()
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(head.encode() + payload)
            await writer.drain()
            writer.close()

    return one


def check_fields(body: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    """400 for a field the route does not define or a value of the wrong type (13.1)."""
    for key, value in body.items():
        if key not in allowed:
            raise BadRequest(f"unknown field {key!r}")
        if isinstance(value, bool) or not isinstance(value, allowed[key]):
            raise BadRequest(f"field {key!r} has the wrong type")
        if isinstance(value, (int, float)) and value < 0:
            raise BadRequest(f"field {key!r} is negative")
