"""Control a running reference peer from outside its process: HTTP with JSON bodies.

The routes are those of PROTOCOL.md's appendix "Test-control interface", which a
third-party peer may offer so that the harness can drive it. The Primary (`ControlServer`):

    GET  /status                  the Primary's status: at least {"state", "epoch"}
    POST /reconfigure             {"width"?, "height"?, "bitrate"?, "fps"?, "settle"?}
    POST /restart-encoder         {"settle"?}
    POST /pause | /resume | /stop | /start
    POST /legacy                  {"enabled": true|false}

/reconfigure and /restart-encoder answer {"epoch": N} once the new epoch has begun;
the settle time and the new encoder follow after the answer.

The Viewer (`ViewerControlServer`, PROTOCOL.md 7.12):

    GET  /status                  the Viewer's state, epoch and background flag
    POST /background | /foreground
    POST /kill-connection         drop the socket at once (no BYE), then reconnect as usual

Loopback only by default; there is no authentication, like Toxiproxy's API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Coroutine
from typing import Any

from reference.peers.primary import ReferencePrimary
from reference.peers.viewer import ReferenceViewer

MAX_BODY = 64 * 1024
STREAM_FIELDS = frozenset({"width", "height", "bitrate", "fps"})

log = logging.getLogger("reference.control")


class _JsonControlServer:
    """The HTTP side: one request per connection, a JSON object in, one out."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while line := (await reader.readline()).decode("latin-1").strip():
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(request_line) < 2 or length > MAX_BODY:
                status, payload = 400, {"error": "bad request"}
            else:
                raw = await reader.readexactly(length) if length else b""
                try:
                    body = json.loads(raw) if raw.strip() else {}
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                except ValueError as exc:
                    status, payload = 400, {"error": f"bad JSON body: {exc}"}
                else:
                    try:
                        status, payload = await self._dispatch(
                            request_line[0], request_line[1], body
                        )
                    except Exception as exc:  # report it to the caller; keep serving
                        status, payload = 409, {"error": str(exc)}
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


class ControlServer(_JsonControlServer):
    def __init__(self, primary: ReferencePrimary, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.primary = primary
        self._changes: set[asyncio.Task[int]] = set()  # epoch changes still settling

    async def _epoch_change(self, change: Coroutine[Any, Any, int]) -> tuple[int, Any]:
        epoch, task = await self.primary.begin_epoch_change(change)
        if not task.done():
            self._changes.add(task)
            task.add_done_callback(self._settled)
        return 200, {"epoch": epoch}

    def _settled(self, task: asyncio.Task[int]) -> None:
        self._changes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("an epoch change failed after its answer: %s", task.exception())

    async def close(self) -> None:
        for task in list(self._changes):
            task.cancel()
        await super().close()

    async def _dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        p = self.primary
        if method == "GET" and path == "/status":
            return 200, p.status()
        if method != "POST":
            return 405, {"error": f"{method} not allowed on {path}"}
        if path in ("/reconfigure", "/restart-encoder"):
            allowed = (STREAM_FIELDS if path == "/reconfigure" else frozenset()) | {"settle"}
            unknown = set(body) - allowed
            if unknown:
                return 400, {
                    "error": f"unknown fields {sorted(unknown)}; allowed {sorted(allowed)}"
                }
            if not all(isinstance(body[k], int) and body[k] > 0 for k in set(body) - {"settle"}):
                return 400, {"error": "width, height, bitrate and fps must be positive integers"}
            settle = body.pop("settle", 0)
            if isinstance(settle, bool) or not isinstance(settle, int | float) or settle < 0:
                return 400, {"error": "settle must be a number of seconds, 0 or more"}
            if path == "/reconfigure":
                return await self._epoch_change(p.reconfigure(**body, settle=float(settle)))
            return await self._epoch_change(p.restart_encoder(settle=float(settle)))
        if path == "/pause":
            await p.pause()
        elif path == "/resume":
            await p.resume()
        elif path == "/stop":
            await p.stop_stream()
        elif path == "/start":
            await p.start_stream()
        elif path == "/legacy":
            p.set_legacy(bool(body.get("enabled", True)))
        else:
            return 404, {"error": f"no route {path}"}
        return 200, p.status()


class ViewerControlServer(_JsonControlServer):
    """Send a running reference Viewer to the background and back (PROTOCOL.md 7.12)."""

    def __init__(self, viewer: ReferenceViewer, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.viewer = viewer

    def status(self) -> dict[str, Any]:
        conn = self.viewer.conn
        return {"state": conn.state.value, "epoch": conn.epoch, "background": conn.background}

    async def _dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/status":
            return 200, self.status()
        if method != "POST":
            return 405, {"error": f"{method} not allowed on {path}"}
        if path == "/kill-connection":
            if not self.viewer.kill_connection():
                return 409, {"error": "no connection to kill"}
            return 200, self.status()
        background = {"/background": True, "/foreground": False}.get(path)
        if background is None:
            return 404, {"error": f"no route {path}"}
        self.viewer.set_background(background)
        return 200, self.status()


def control_request(
    base_url: str, action: str, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Call a running peer's control API; raises RuntimeError with its error text."""
    method = "GET" if action == "status" else "POST"
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/{action}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{action}: {exc.code} {exc.read().decode(errors='replace')}") from None
