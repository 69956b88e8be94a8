"""A Primary and Viewers wired back to back in memory, on a virtual clock.

Both state machines are the real sans-IO ones; only the socket and the codec
are replaced: bytes move between them at once, and "decoding" a media frame
reports the picture as decoded. Tests use it to walk every timer to its
deadline in microseconds of real time, and to script loss and reordering
with `viewer_bound_filter`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from reference.protocol.auth import NonceBook
from reference.protocol.deviations import Deviation
from reference.protocol.events import (
    CloseSocket,
    Event,
    KeyframeRequested,
    MediaToDecode,
    ReconnectDue,
    StreamRequested,
)
from reference.protocol.frames import Frame, FrameDecoder, FrameType, encode_frame
from reference.protocol.messages import StreamEvent, matching_events
from reference.protocol.primary import PrimaryConnection, StreamStatus
from reference.protocol.states import StreamState
from reference.protocol.timings import DEFAULT_TIMINGS, Timings
from reference.protocol.viewer import ViewerConnection

# A filter sees each whole frame bound for the Viewer and returns the frames to deliver.
FrameFilter = Callable[[Frame], list[Frame]]
# Told of every byte string that crosses: (side "primary" | "viewer", connection number,
# "v2p" | "p2v" | "open" | "close", data, now).
WireObserver = Callable[[str, int, str, bytes, float], None]


@dataclass
class SimPrimary:
    """The Primary application's part: stream control and media fan-out."""

    secret: str
    timings: Timings = DEFAULT_TIMINGS
    version: int = 2
    deviations: frozenset[Deviation] = frozenset()
    answer_keyframe_requests: bool = True
    answer_stream_requests: bool = True  # False: a hostile Primary that never answers
    stream: StreamStatus = field(default_factory=StreamStatus)
    nonces: NonceBook = field(default_factory=NonceBook)
    connections: list[PrimaryConnection] = field(default_factory=list)
    frame_number: int = 0
    _sessions: int = 0

    def new_connection(self, now: float) -> PrimaryConnection:
        self._sessions += 1
        conn = PrimaryConnection(
            self.secret, self.stream, self.nonces, session_id=f"s{self._sessions}",
            version=self.version, timings=self.timings, deviations=self.deviations,
            random_bytes=random.Random(self._sessions).randbytes,
        )
        conn.connection_made(now)
        self.connections.append(conn)
        return conn

    def live(self) -> list[PrimaryConnection]:
        return [c for c in self.connections if c.socket_open]

    def broadcast_state(self, now: float, event: StreamEvent | None = None) -> None:
        """STREAM_STATE to every live connection, each followed by its event (STATE-8, EVT-2).

        The event defaults to the one the change calls for (`matching_events`), with
        RECONFIG_STARTED for RECONFIGURING.
        """
        if event is None:
            history = self.stream.history
            previous = history[-2][1] if len(history) >= 2 else None
            events = matching_events(previous, self.stream.state)
            reconfig = StreamEvent.RECONFIG_STARTED
            event = reconfig if reconfig in events else min(events)
        for conn in self.live():
            if conn.send_stream_state(now):
                conn.send_stream_event(event.value, now)

    def send_keyframe(self, conn: PrimaryConnection, now: float) -> None:
        epoch = self.stream.epoch
        conn.send_media(FrameType.CSD, b"csd", epoch=epoch, now=now, timestamp_us=0)
        conn.send_media(
            FrameType.VIDEO, b"idr", epoch=epoch, now=now, keyframe=True,
            timestamp_us=self.frame_number,
        )

    def start(self, now: float) -> None:
        """STOPPED -> RECONFIGURING -> (keyframe out) -> ACTIVE: KEY-1 order."""
        self.stream.transition(StreamState.RECONFIGURING, now)
        self.broadcast_state(now)
        self.go_active(now)

    def go_active(self, now: float) -> None:
        for conn in self.live():
            if conn.accepted:
                self.send_keyframe(conn, now)
        self.stream.transition(StreamState.ACTIVE, now)
        self.broadcast_state(now)

    def reconfigure(self, now: float, *, finish: bool = True) -> None:
        self.stream.transition(StreamState.RECONFIGURING, now)
        self.broadcast_state(now)
        if finish:
            self.go_active(now)

    def send_picture(self, now: float) -> None:
        self.frame_number += 1
        for conn in self.live():
            if conn.accepted:
                conn.send_media(
                    FrameType.VIDEO, b"p", epoch=self.stream.epoch, now=now,
                    timestamp_us=self.frame_number,
                )

    def handle(self, conn: PrimaryConnection, event: Event, now: float) -> None:
        if not conn.socket_open:
            return  # queued before the connection closed: nobody to answer
        if isinstance(event, StreamRequested) and self.answer_stream_requests:
            if event.request.codec.lower() != "h264":  # as the reference Primary (NEG-3)
                conn.reject_stream(now, f"codec {event.request.codec} not offered; use h264")
                return
            conn.accept_stream(now, width=640, height=360, fps=30)
            if self.stream.state is StreamState.ACTIVE:
                self.send_keyframe(conn, now)  # KEY-3
        elif isinstance(event, KeyframeRequested) and self.answer_keyframe_requests:
            self.send_keyframe(conn, now)


@dataclass
class Pipe:
    """One simulated TCP connection between a Viewer and the Primary."""

    primary_side: PrimaryConnection
    number: int = 0
    open: bool = True
    to_viewer: FrameDecoder = field(default_factory=FrameDecoder)


class Loopback:
    """Drive one Viewer against a SimPrimary; `run_until(t)` advances virtual time."""

    def __init__(
        self,
        secret: str = "s3cret",
        *,
        timings: Timings = DEFAULT_TIMINGS,
        primary_version: int = 2,
        viewer_version: int = 2,
        viewer_secret: str | None = None,
        primary_deviations: frozenset[Deviation] = frozenset(),
        viewer_deviations: frozenset[Deviation] = frozenset(),
        seed: int = 1,
    ) -> None:
        self.now = 0.0
        self.primary = SimPrimary(
            secret, timings=timings, version=primary_version, deviations=primary_deviations
        )
        self.viewer = ViewerConnection(
            viewer_secret if viewer_secret is not None else secret,
            version=viewer_version, timings=timings, rng=random.Random(seed),
            deviations=viewer_deviations,
        )
        self.pipe: Pipe | None = None
        self.viewer_events: list[tuple[float, Event]] = []
        self.primary_events: list[tuple[float, Event]] = []
        self.viewer_bound_filter: FrameFilter | None = None
        self.wire_observer: WireObserver | None = None
        self._pipes = 0
        self.viewer_silent = False  # the Viewer's bytes vanish (heartbeat loss)
        self.primary_silent = False
        self.decode = True

    # --- wiring -------------------------------------------------------------

    def connect(self) -> None:
        self._pipes += 1
        self.pipe = Pipe(self.primary.new_connection(self.now), self._pipes)
        self._observe("viewer", "open", b"")
        self._observe("primary", "open", b"")
        self.viewer.connection_made(self.now)
        self.pump()

    def connect_mute_client(self) -> None:
        """A client that connects and never sends a byte (a half-open socket): only the
        Primary's side of the connection exists, the Viewer takes no part in it."""
        self._pipes += 1
        self.pipe = Pipe(self.primary.new_connection(self.now), self._pipes)
        self._observe("primary", "open", b"")
        self.pump()

    def _shut(self, pipe: Pipe) -> None:
        pipe.open = False
        self._observe("viewer", "close", b"")
        self._observe("primary", "close", b"")

    def pump(self) -> None:
        for _ in range(10_000):
            if not self._step():
                return
        raise RuntimeError("loopback did not settle")

    def _step(self) -> bool:
        moved = False
        pipe = self.pipe
        if pipe is not None and pipe.open:
            up = self.viewer.data_to_send()
            if up:
                self._observe("viewer", "v2p", up)
            if up and not self.viewer_silent:
                self._observe("primary", "v2p", up)
                pipe.primary_side.receive_data(up, self.now)
                moved = True
            down = pipe.primary_side.data_to_send()
            if down:
                self._observe("primary", "p2v", down)  # sent, even if the network eats it
            if down and not self.primary_silent:
                self._deliver_to_viewer(pipe, down)
                moved = True
        for event in self.viewer.next_events():
            moved = True
            self.viewer_events.append((self.now, event))
            self._viewer_event(event)
        for conn in self.primary.connections:
            for event in conn.next_events():
                moved = True
                self.primary_events.append((self.now, event))
                ours = pipe is not None and pipe.primary_side is conn
                if isinstance(event, CloseSocket) and pipe is not None and ours:
                    self._flush_then_close(pipe)
                else:
                    self.primary.handle(conn, event, self.now)
        return moved

    def _observe(self, side: str, direction: str, data: bytes) -> None:
        if self.wire_observer is not None and self.pipe is not None:
            self.wire_observer(side, self.pipe.number, direction, data, self.now)

    def _deliver_to_viewer(self, pipe: Pipe, data: bytes) -> None:
        if self.viewer_bound_filter is None:
            self._observe("viewer", "p2v", data)
            self.viewer.receive_data(data, self.now)
            return
        pipe.to_viewer.feed(data)
        for frame in pipe.to_viewer.frames():
            for out in self.viewer_bound_filter(frame):
                delivered = encode_frame(out)
                self._observe("viewer", "p2v", delivered)
                self.viewer.receive_data(delivered, self.now)

    def inject_to_viewer(self, data: bytes) -> None:
        """Bytes from the network, not the Primary: seen by the Viewer's tap, then delivered.

        This is what the frame proxy's injections look like to the Viewer (a stale-epoch
        frame, a replayed control message): its own tap records them.
        """
        self._observe("viewer", "p2v", data)
        self.viewer.receive_data(data, self.now)

    def inject_to_primary(self, data: bytes) -> None:
        """Bytes from the network, not the Viewer: seen by the Primary's tap, then delivered
        (the frame proxy's injections towards the Primary, a raw client's bad input)."""
        pipe = self.pipe
        if pipe is None or not pipe.open:
            raise RuntimeError("inject_to_primary needs an open connection")
        self._observe("primary", "v2p", data)
        pipe.primary_side.receive_data(data, self.now)

    def _flush_then_close(self, pipe: Pipe) -> None:
        last = pipe.primary_side.data_to_send()
        if last:
            self._observe("primary", "p2v", last)
        if last and not self.primary_silent:
            self._deliver_to_viewer(pipe, last)
        self._shut(pipe)
        self.viewer.receive_data(b"", self.now)

    def _viewer_event(self, event: Event) -> None:
        pipe = self.pipe
        if isinstance(event, CloseSocket) and pipe is not None and pipe.open:
            up = self.viewer.data_to_send()
            if up:
                self._observe("viewer", "v2p", up)
            if up and not self.viewer_silent:
                self._observe("primary", "v2p", up)
                pipe.primary_side.receive_data(up, self.now)
            self._shut(pipe)
            pipe.primary_side.connection_lost(self.now, "viewer closed")
        elif isinstance(event, ReconnectDue):
            self.connect()
        elif isinstance(event, MediaToDecode) and self.decode:
            frame = event.frame
            if frame.type is FrameType.CSD:
                self.viewer.csd_applied_to_decoder(frame.epoch, self.now)
            elif frame.type is FrameType.VIDEO:
                self.viewer.picture_decoded(frame.epoch, frame.is_keyframe, self.now)

    # --- time ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [self.viewer.next_deadline()]
        deadlines += [c.next_deadline() for c in self.primary.connections]
        return min((d for d in deadlines if d is not None), default=None)

    def run_until(self, t: float, *, picture_interval: float | None = None) -> None:
        """Advance to `t`, firing every deadline on time; optionally stream pictures."""
        self.pump()  # what the application queued since the last step goes out now
        next_picture = self.now + picture_interval if picture_interval else None
        while True:
            candidates = [t]
            deadline = self.next_deadline()
            if deadline is not None:
                candidates.append(max(deadline, self.now))
            if next_picture is not None:
                candidates.append(next_picture)
            step = min(candidates)
            if step > t:
                break
            self.now = step
            if next_picture is not None and step >= next_picture:
                assert picture_interval is not None
                if self.primary.stream.state is StreamState.ACTIVE:
                    self.primary.send_picture(self.now)
                next_picture += picture_interval
            self.viewer.handle_timers(self.now)
            for conn in self.primary.connections:
                conn.handle_timers(self.now)
            self.pump()
            if step >= t and (deadline is None or deadline > t) and (
                next_picture is None or next_picture > t
            ):
                break
        self.now = t

    # --- queries ------------------------------------------------------------

    def events_of(self, kind: type[Event]) -> list[tuple[float, Event]]:
        return [(t, e) for t, e in self.viewer_events if isinstance(e, kind)]
