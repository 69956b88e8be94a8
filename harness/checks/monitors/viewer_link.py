"""What a Viewer's own tap delivered to it, for rules that hold its telemetry against the wire.

Several Viewer rules (STATE, EVT, SNAP-3, VER-4, LEGACY-1) ask "what had the
wire told this Viewer when it wrote that record?". The answer is causal, on one
clock: the Viewer-side tap timestamps a Primary->Viewer frame when it reads it,
*before* forwarding it, so the Viewer can act on a frame only at a later (or
the same) time. A Viewer is allowed to lag behind its socket by the monitor
tolerance: at time `t` the server state it holds is the last STREAM_STATE
delivered at or before `t - tolerance`, or any delivered in `(t - tolerance,
t]` (`candidates`). No other window.

A `Links` keeps, per Viewer, only its newest tap connection and the STREAM_STATE
messages delivered on it over the last few tolerances; it is replaced when the
Viewer's tap opens another connection, so memory follows the number of Viewers.

`Deferred` settles a telemetry judgement that the wire seems to contradict
only once trace time has passed the record's time: a tap frame stamped at the
same instant as the record may reach the engine just after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from harness.checks.episodes import Episode
from harness.checks.members import (
    ACTIVE,
    CSD,
    VIEWER_TAP,
)
from harness.checks.monitor import Monitor
from harness.checks.wire import ANY_VIEWER, Conn, WireFrame
from reference.protocol.messages import Proto, StreamAccepted, StreamStateMessage
from reference.protocol.states import StreamState

# How much delivered history a link keeps beyond the tolerance: enough for any
# record that the sequencer releases within its lag.
HISTORY = 10.0


@dataclass(slots=True)
class Delivered:
    t: float
    state: StreamState
    epoch: int
    index: int  # position among the connection's STREAM_STATEs: wire order


@dataclass(eq=False, slots=True)
class Link:
    """One Viewer's newest tap connection as the Viewer received it."""

    conn: Conn
    states: deque[Delivered] = field(default_factory=deque)
    delivered: int = 0  # STREAM_STATEs delivered so far
    snapshot_at: float | None = None  # first STREAM_STATE delivered
    accepted_at: float | None = None
    proto_version: int | None = None
    newest_epoch: int | None = None  # newest epoch announced (STREAM_STATE, STREAM_ACCEPTED)
    # Media since STREAM_ACCEPTED and since the last STREAM_STATE other than ACTIVE: a CSD,
    # then a keyframe of the CSD's epoch. `ready_at` is when that keyframe was delivered.
    csd_epoch: int | None = None
    ready_at: float | None = None
    ready_epoch: int | None = None
    generation: int = 0  # bumped whenever what the Viewer needs starts over

    @property
    def speaks_v2(self) -> bool | None:
        """True/False once the Primary's version shows on the wire, None before."""
        hello = self.conn.hello
        if hello is not None and hello.version < 2:
            return False  # a version-1 Viewer speaks version 1, whatever it is sent
        if self.proto_version is not None:
            return self.proto_version >= 2
        if self.snapshot_at is not None:
            return True
        if self.conn.challenge is not None:
            return False  # AUTH_CHALLENGE without PROTO before it: a version-1 Primary
        return None

    def last(self) -> Delivered | None:
        return self.states[-1] if self.states else None

    def candidates(self, t: float, tolerance: float) -> list[Delivered]:
        """The STREAM_STATEs the Viewer may hold at `t` (see the module docstring)."""
        out: list[Delivered] = []
        before: Delivered | None = None
        for item in self.states:
            if item.t > t:
                break
            if item.t <= t - tolerance:
                before = item
            else:
                out.append(item)
        return ([before] if before is not None else []) + out

    def delivered_between(self, start: float, end: float) -> list[Delivered]:
        return [d for d in self.states if start < d.t <= end]

    def delivered_since(self, index: int, end: float) -> list[Delivered]:
        """From the `index`-th STREAM_STATE on (wire order), up to time `end`."""
        return [d for d in self.states if d.index >= index and d.t <= end]


class Links:
    """Every Viewer's newest link; fed from a monitor's on_frame."""

    def __init__(self) -> None:
        self.by_viewer: dict[str, Link] = {}

    def current(self, frame: WireFrame) -> Link | None:
        """The link `frame` was fed to (the engine feeds every frame once, first)."""
        if frame.conn.side is not VIEWER_TAP:
            return None
        link = self.by_viewer.get(frame.conn.viewer or ANY_VIEWER)
        return link if link is not None and link.conn is frame.conn else None

    def frame(self, frame: WireFrame) -> Link | None:
        conn = frame.conn
        if conn.side is not VIEWER_TAP:
            return None
        key = conn.viewer or ANY_VIEWER
        link = self.by_viewer.get(key)
        if link is None or link.conn is not conn:
            link = Link(conn)
            self.by_viewer[key] = link
        if not frame.from_primary:
            return link
        message = frame.message
        if frame.is_media:
            self._media(link, frame)
            return link
        if isinstance(message, StreamStateMessage):
            previous = link.last()
            newer = previous is not None and message.epoch > previous.epoch
            if message.state is not ACTIVE or newer:
                link.csd_epoch = link.ready_at = link.ready_epoch = None
                link.generation += 1
            link.states.append(Delivered(frame.t, message.state, message.epoch, link.delivered))
            link.delivered += 1
            if link.snapshot_at is None:
                link.snapshot_at = frame.t
            link.newest_epoch = max(link.newest_epoch or message.epoch, message.epoch)
            while len(link.states) > 1 and link.states[1].t < frame.t - HISTORY:
                link.states.popleft()
        elif isinstance(message, StreamAccepted) and link.accepted_at is None:
            link.accepted_at = frame.t
            if message.epoch is not None:
                link.newest_epoch = max(link.newest_epoch or message.epoch, message.epoch)
        elif isinstance(message, Proto) and link.proto_version is None:
            link.proto_version = message.version
        return link

    @staticmethod
    def _media(link: Link, frame: WireFrame) -> None:
        if link.accepted_at is None:
            return
        if frame.type is CSD:
            if link.csd_epoch != frame.epoch:
                link.ready_at = link.ready_epoch = None
            link.csd_epoch = frame.epoch
        elif frame.is_keyframe and frame.epoch == link.csd_epoch and link.ready_at is None:
            link.ready_at, link.ready_epoch = frame.t, frame.epoch
            link.generation += 1

    def of(self, viewer: str, since: float | None = None) -> Link | None:
        """The Viewer's newest link, unless it closed before `since` (an episode's start).

        A connection that closed before the episode began belongs to an earlier
        episode: the tap has not yet seen this episode's connection.
        """
        link = self.by_viewer.get(viewer) or self.by_viewer.get(ANY_VIEWER)
        if link is None:
            return None
        closed = link.conn.closed
        if since is not None and closed is not None and closed <= since:
            return None
        return link


def active_among(items: list[Delivered], epoch: int | None = None) -> bool:
    return any(
        d.state is StreamState.ACTIVE and (epoch is None or d.epoch == epoch) for d in items
    )


class Deferred:
    """Judge now; if it fails, judge again once the trace is past `t`, then fail for good."""

    def __init__(self, owner: Monitor) -> None:
        self.owner = owner
        self.pending: dict[int, tuple[float, Callable[[], str | None], str]] = {}
        self._next = 0

    def judge(self, t: float, where: str, rule: Callable[[], str | None]) -> None:
        self.owner.check()
        if rule() is None:
            return
        key = self._next
        self._next += 1
        self.pending[key] = (t, rule, where)
        self.owner.ctx.at(t, partial(self._settle, key))

    def _settle(self, key: int, now: float) -> None:
        item = self.pending.pop(key, None)
        if item is None:
            return
        t, rule, where = item
        why = rule()
        if why is not None:
            self.owner.fail(t, why, where)

    def finish(self) -> None:
        for key in list(self.pending):
            self._settle(key, 0.0)


def episode_of(monitor: Monitor, viewer: str) -> Episode | None:
    """The Viewer's current episode; for an unnamed Viewer tap, the only Viewer's."""
    engine = monitor.ctx.engine
    if engine is None:
        return None
    current = engine.episodes.current
    if viewer != ANY_VIEWER:
        return current.get(viewer)
    return next(iter(current.values())) if len(current) == 1 else None


def viewer_key(link: Link) -> str:
    return link.conn.viewer or ANY_VIEWER
