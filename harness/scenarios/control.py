"""Driving external peers through their test-control interface (PROTOCOL.md section 15).

A third-party Primary or Viewer may offer a small HTTP+JSON interface so that the
harness can make it reconfigure, pause, go to the background... This module maps
scenario actions to its routes, turns any failure to deliver into `NotDelivered`
(one line: the route and the reason), and reads an external Primary's own account
of its stream state (`GET /status`) into the trace as `primary` records, the kind
the reference Primary writes, so that waits on `stream_state` and SNAP-2 work for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
from typing import Any

from harness.trace import TraceWriter
from reference.peers.control import control_request
from reference.protocol.states import StreamState

log = logging.getLogger("harness.control")

# Scenario action -> the route of a Primary's test-control interface.
PRIMARY_ROUTES: dict[str, str] = {
    "reconfigure": "reconfigure",
    "restart_encoder": "restart-encoder",
    "pause": "pause",
    "resume": "resume",
    "stop_stream": "stop",
    "start_stream": "start",
    "legacy": "legacy",
}
# Scenario action -> the route of a Viewer's test-control interface.
VIEWER_ROUTES: dict[str, str] = {
    "background": "background",
    "foreground": "foreground",
    "kill_connection": "kill-connection",
}
STATUS_ROUTE = "status"
# How long an action's request may take before it counts as not delivered (PROTOCOL.md 15.1).
ACTION_TIMEOUT = 10.0
# How often GET /status is asked, and how long one answer may take: well inside the 0.3 s
# tolerance SNAP-2 allows between the Primary's report and its snapshot.
POLL_INTERVAL = 0.1
POLL_TIMEOUT = 1.0
# How long a started Primary's interface gets to answer GET /status for the first time.
FIRST_ANSWER_TIMEOUT = 15.0


class NotDelivered(Exception):
    """An action could not be delivered to a peer; the text says which route and why."""


async def deliver(url: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to `url/route`; the peer's answer, or NotDelivered with the reason."""
    try:
        return await asyncio.to_thread(control_request, url, route, body, ACTION_TIMEOUT)
    except RuntimeError as exc:  # an HTTP error status, with the peer's own text
        raise NotDelivered(f"POST {url.rstrip('/')}/{route}: {exc}") from None
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise NotDelivered(f"POST {url.rstrip('/')}/{route}: {reason}") from None


def parse_status(answer: Any) -> tuple[StreamState, int]:
    """The (state, epoch) of a `GET /status` answer; ValueError naming what is wrong."""
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    state, epoch = answer.get("state"), answer.get("epoch")
    if not isinstance(state, str) or state not in StreamState.__members__:
        names = ", ".join(StreamState.__members__)
        raise ValueError(f"'state' is {state!r}, not one of {names}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"'epoch' is {epoch!r}, not an integer >= 0")
    return StreamState[state], epoch


class PrimaryStatusPoller:
    """Writes an external Primary's stream state into the trace each time it changes.

    The Primary is asked every POLL_INTERVAL and at once when `poke()` is called
    (after each delivered action). A record's `t` is when the answer arrived: the
    change happened at most one interval plus one round trip before.
    """

    def __init__(self, url: str, trace: TraceWriter) -> None:
        self.url = url
        self.trace = trace
        self.last: tuple[StreamState, int] | None = None
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._complained: str | None = None  # the last problem noted, so it is noted once
        self._answered = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="primary status")

    def poke(self) -> None:
        self._poke.set()

    async def first_answer(self, within: float = FIRST_ANSWER_TIMEOUT) -> None:
        """Wait until the Primary has told its state once; NotDelivered at the deadline.

        No Viewer may connect before: a snapshot sent while the harness knows nothing
        of the stream's state could not be compared with anything.
        """
        try:
            async with asyncio.timeout(within):
                await self._answered.wait()
        except TimeoutError:
            problem = self._complained or "no answer"
            raise NotDelivered(
                f"the Primary's GET /status did not answer within {within:g} s: {problem}"
            ) from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.last = None  # a restarted Primary is reported afresh
        self._answered.clear()

    async def poll_once(self) -> None:
        try:
            answer = await asyncio.to_thread(
                control_request, self.url, STATUS_ROUTE, None, POLL_TIMEOUT
            )
            state, epoch = parse_status(answer)
        except (RuntimeError, OSError, ValueError) as exc:  # unreachable, refused, not JSON
            self._complain(f"GET {self.url.rstrip('/')}/{STATUS_ROUTE}: {exc}")
            return
        self._complained = None
        self._answered.set()
        if (state, epoch) == self.last:
            return
        self.last = (state, epoch)
        # `sampled`: a state held for less than an interval may be missing (SNAP-2 knows).
        self.trace.emit(
            "primary",
            what="state",
            stream_state=state.name,
            epoch=epoch,
            reason="GET /status",
            sampled=True,
        )

    def _complain(self, problem: str) -> None:
        if problem != self._complained:
            self._complained = problem
            self.trace.emit("note", text=f"primary status: {problem}")

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            self._poke.clear()
            # Asking an external process at intervals: it has no way to tell us first.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL):
                    await self._poke.wait()
