"""The embedded Toxiproxy: the API and every proxy on one asyncio loop in a background thread.

Synchronous test code uses it as a context manager; the loop thread owns all
proxy state, so nothing here needs a lock beyond the hand-off at start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from types import TracebackType

from harness.toxiproxy.api import ApiServer
from harness.toxiproxy.http11 import HEADER_LIMIT, TOXIPROXY_TIMEOUTS, Timeouts, serve_connection

STARTUP_TIMEOUT_S = 10.0


class EmbeddedToxiproxy:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        timeouts: Timeouts = TOXIPROXY_TIMEOUTS,
    ) -> None:
        self.host = host
        self.timeouts = timeouts
        self._requested_port = port
        self._port: int | None = None
        # One generator for toxicity, jitter and slicing, so a seed replays a whole run.
        self.rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._api: ApiServer | None = None
        self._http: asyncio.Server | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded Toxiproxy is not running")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmbeddedToxiproxy:
        if self.running:
            return self
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="embedded-toxiproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S):
            raise TimeoutError("the embedded Toxiproxy did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be gone
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STARTUP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STARTUP_TIMEOUT_S)
        self._thread = None
        self._port = None

    def __enter__(self) -> EmbeddedToxiproxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- inside the loop thread -----------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            self._loop = None
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _startup(self) -> None:
        self._api = ApiServer(self.rng)
        api = self._api
        timeouts = self.timeouts

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Finish normally when cancelled at shutdown: asyncio's stream machinery logs
            # a cancelled client task as an unhandled error (CPython 3.11).
            with contextlib.suppress(asyncio.CancelledError):
                await serve_connection(reader, writer, api.handle, timeouts)

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._http = await asyncio.start_server(
            on_client,
            self.host,
            self._requested_port,
            family=family,
            reuse_address=True,
            limit=HEADER_LIMIT,
        )
        self._port = self._http.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._api is not None:
            await self._api.shutdown()
