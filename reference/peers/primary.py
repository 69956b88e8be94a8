"""The reference Primary: one encoder, many Viewers, every rule on its side.

The stream's truth is one `StreamStatus`; each Viewer connection is a sans-IO
`PrimaryConnection` driven by a `StreamDriver`. A single encoder task paces
pictures from the synthetic source, encodes once per configuration, and fans
each unit out to the Viewers whose stream was accepted. Ordering rules live
in `_publish_keyframe`: CSD and keyframe go out before ACTIVE (KEY-1).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from reference.codecs import EncoderFailure, VideoEncoder, open_encoder
from reference.codecs.replay import ReplayEncoder
from reference.media.audio import PACKET_SAMPLES, SAMPLE_RATE, OpusEpochEncoder, open_audio_encoder
from reference.media.source import SyntheticSource
from reference.peers.driver import StreamDriver, monotonic
from reference.protocol.auth import NonceBook
from reference.protocol.deviations import Deviation, strikes
from reference.protocol.events import (
    CloseSocket,
    Event,
    KeyframeRequested,
    MessageReceived,
    StreamRequested,
    ViewerAuthenticated,
)
from reference.protocol.frames import FrameType
from reference.protocol.messages import Hello, StreamEvent
from reference.protocol.primary import EpochsExhausted, PrimaryConnection, StreamStatus
from reference.protocol.states import StreamState
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

log = logging.getLogger("reference.primary")

# A Viewer whose socket holds more than this unsent is skipped until it drains,
# so one slow Viewer cannot stall the fan-out to the others.
MAX_BACKLOG = 2 * 1024 * 1024
# A Viewer sends only small CONTROL frames: a small read buffer per connection keeps a
# flood of senders from costing the default 64 KiB (x2 before pausing) each.
READ_LIMIT = 16 * 1024
RECEIVE_BUFFER = 8 * 1024  # SO_RCVBUF of the listening socket (Linux doubles it)
AUDIO_PACKET = PACKET_SAMPLES / SAMPLE_RATE  # seconds of sound per AUDIO frame (20 ms)
AUDIO_CATCH_UP = 0.2  # behind by more than this, the audio clock skips rather than bursts
KEYFRAME_MIN_INTERVAL = 0.2  # seconds; well inside KEY-3's 1 s
STREAM_START_TIMEOUT = 5.0


@dataclass(frozen=True)
class StreamConfig:
    width: int = 640
    height: int = 360
    fps: int = 30
    bitrate: int = 800_000
    gop: int = 60


def _occasion(config: StreamConfig) -> str:
    """What a rare deviation's strike depends on: the configuration a reconfiguration goes
    to, as a bug that only some encoder settings reach (not the epoch number or the time,
    which a shorter reproduction would change)."""
    return f"reconfigure:{config.width}x{config.height}@{config.bitrate}/{config.fps}"


@dataclass
class PrimaryConfig:
    secret: str
    host: str = "127.0.0.1"
    port: int = 0
    stream: StreamConfig = field(default_factory=StreamConfig)
    codec_backend: str = "auto"
    version: int = 2
    timings: Timings = DEFAULT_TIMINGS
    deviations: frozenset[Deviation] = frozenset()
    autostart: bool = True
    audio: bool = True  # the stream has an Opus track (reference/media/audio.py), epoch-tagged
    # Code one GOP per configuration and send it in a loop (reference/codecs/replay.py):
    # the encoder's cost taken out of a load benchmark; for header-only Viewers.
    replay: bool = False
    # At most this many connections may be open without having authenticated; a new
    # one beyond it closes the oldest (BYE): the oldest that has sent nothing yet, else
    # the oldest that has sent HELLO. A flood of silent sockets cannot crowd out a real
    # Viewer. Each costs at most one CONTROL payload of buffer (FRAME-1).
    max_unauthenticated: int = 256
    backlog: int = 1024  # listen(2) queue: a burst of connects is queued, not dropped
    max_unsent: int = MAX_BACKLOG  # bytes queued for a Viewer beyond which it is skipped
    # Decides where a rare deviation strikes (deviations.strikes); the scenario's seed.
    seed: int = 0


@dataclass
class ViewerLink:
    conn: PrimaryConnection
    driver: StreamDriver
    peer: str
    needs_keyframe: bool = True
    was_authenticated: bool = False  # for the log: a real Viewer, not a flood's socket
    # A Viewer skipped for the keyframe that starts ACTIVE (congested) is told ACTIVE, and
    # then its event, only once its own keyframe went out (KEY-1 holds per connection).
    held_active: bool = False
    held_event: StreamEvent | None = None


class ReferencePrimary:
    def __init__(self, config: PrimaryConfig, *, trace: Any = None) -> None:
        self.config = config
        self.trace = trace
        self.stream = StreamStatus(deviations=config.deviations)
        self.stream_config = config.stream
        self.nonces = NonceBook()
        self.links: dict[str, ViewerLink] = {}
        self.encoder: VideoEncoder | None = None
        self.source: SyntheticSource | None = None
        self.audio_encoder: OpusEpochEncoder | None = None
        self._audio_next_at: float | None = None  # capture time of the next AUDIO frame
        self.backend: str | None = None
        self.frames_sent = 0
        self.audio_frames_sent = 0
        self.bytes_sent = 0
        self.handler_errors = 0  # exceptions caught in connection handlers: each one a bug
        self.unauthenticated_dropped = 0  # closed by the max_unauthenticated cap
        # Connections not yet authenticated, oldest first, apart by progress: the cap
        # evicts from the front of the silent ones, then of the greeted ones, without
        # scanning every link (a flood would make that scan quadratic).
        self._silent: dict[str, ViewerLink] = {}  # nothing acted on yet
        self._greeted: dict[str, ViewerLink] = {}  # HELLO received, no AUTH_OK yet
        self._sessions = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._encoder_task: asyncio.Task[None] | None = None
        self._force_keyframe = False
        self._keyframe_requested_at: float | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._resuming = False
        self._active = asyncio.Event()  # set once the stream has first become ACTIVE
        # Set at the next change of stream state, then replaced: each waiter holds the one
        # that was current when it began to wait, so no change is missed between waits.
        self._state_changed = asyncio.Event()
        self._capture_us = 0
        self._last_keyframe_at = float("-inf")
        # Deviation.RARE_STALE_EPOCH: the epoch whose first delta frame goes out mistagged.
        self._stale_epoch_due: int | None = None

    # --- lifecycle ----------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        if self.config.max_unauthenticated < 1:
            raise ValueError("max_unauthenticated must be at least 1")
        self._server = await asyncio.start_server(
            self._serve,
            self.config.host,
            self.config.port,
            backlog=self.config.backlog,
            limit=READ_LIMIT,
        )
        for listener in self._server.sockets:
            # Accepted sockets inherit it: the kernel then holds (and one read returns) at
            # most this much per Viewer, instead of a media-sized window nobody needs.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        log.info(
            "primary listening on %s:%d (version %d)",
            self.config.host,
            self.port,
            self.config.version,
        )
        if self.config.autostart:
            await self.start_stream()

    async def close(self) -> None:
        self._stopping = True
        if self._encoder_task is not None:
            self._encoder_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._encoder_task
        now = monotonic()
        for link in list(self.links.values()):
            link.conn.close(now, "primary shutting down")
            link.driver.poke()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*(link.driver.closed.wait() for link in self.links.values()))
        self._close_encoder()

    # --- the control interface ---------------------------------------------

    async def start_stream(self, *, until_active: float = STREAM_START_TIMEOUT) -> None:
        """Start the stream; return once it is ACTIVE (its first keyframe went out).

        Waiting makes "the stream is running" a fact for whoever started it, so a
        Viewer connecting next joins a running stream rather than racing its start.
        """
        async with self._lock:
            if self.stream.state is StreamState.STOPPED:
                await self._begin_epoch("stream started", StreamEvent.RECONFIG_STARTED)
            if self._encoder_task is None or self._encoder_task.done():
                self._encoder_task = asyncio.create_task(self._encode_loop())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._active.wait(), until_active)

    async def reconfigure(
        self,
        *,
        width: int | None = None,
        height: int | None = None,
        bitrate: int | None = None,
        fps: int | None = None,
        settle: float = 0.0,
    ) -> int:
        """A resolution or bitrate tier change: RECONFIGURING, new epoch (EPOCH-1).

        `settle` keeps the stream in RECONFIGURING that long before the new
        encoder starts, as a camera or encoder restart takes time in the field.
        """
        async with self._lock:
            self.stream_config = replace(
                self.stream_config,
                width=width or self.stream_config.width,
                height=height or self.stream_config.height,
                bitrate=bitrate or self.stream_config.bitrate,
                fps=fps or self.stream_config.fps,
            )
            await self._begin_epoch("reconfigure", StreamEvent.RECONFIG_STARTED, settle)
            if Deviation.RARE_STALE_EPOCH in self.config.deviations and strikes(
                self.config.seed, _occasion(self.stream_config)
            ):
                self._stale_epoch_due = self.stream.epoch
            return self.stream.epoch

    async def restart_encoder(self, reason: str = "encoder restart", settle: float = 0.0) -> int:
        async with self._lock:
            await self._begin_epoch(reason, StreamEvent.ENCODER_RESTARTED, settle)
            return self.stream.epoch

    async def begin_epoch_change(
        self, change: Coroutine[Any, Any, int]
    ) -> tuple[int, asyncio.Task[int]]:
        """Start `reconfigure(...)` or `restart_encoder(...)`; return once its epoch has begun.

        The new epoch has begun when RECONFIGURING with it has been queued to every
        Viewer; the change then goes on (its `settle`, the new encoder) in the returned
        task. A control request or a scenario action is delivered at that point, so that
        the harness is not held for the settle time. If the change fails before its epoch
        begins, its exception is raised here.
        """
        before = self.stream.epoch
        task = asyncio.create_task(change)
        while not task.done() and self.stream.epoch == before:
            changed = asyncio.ensure_future(self._state_changed.wait())
            await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
        if task.done():
            return task.result(), task
        return self.stream.epoch, task

    async def pause(self) -> None:
        async with self._lock:
            self._set_state(StreamState.PAUSED, "pause")
            self._broadcast_event(StreamEvent.PAUSED)

    async def resume(self) -> None:
        """Back to ACTIVE, keyframe first (KEY-1); the epoch is unchanged."""
        async with self._lock:
            if self.stream.state is StreamState.PAUSED:
                self._force_keyframe = True
                self._resuming = True

    async def stop_stream(self) -> None:
        async with self._lock:
            self._active.clear()
            self._set_state(StreamState.STOPPED, "stop")
            self._broadcast_event(StreamEvent.STOPPED)
            self._close_encoder()

    def set_legacy(self, legacy: bool) -> None:
        """Behave as a version-1 Primary for the connections made from now on."""
        self.config.version = 1 if legacy else 2

    def status(self) -> dict[str, Any]:
        return {
            "viewers": len(self.links),
            "streaming_viewers": sum(1 for link in self.links.values() if link.conn.accepted),
            "state": self.stream.state.name,
            "epoch": self.stream.epoch,
            "backend": self.backend,
            "width": self.stream_config.width,
            "height": self.stream_config.height,
            "fps": self.stream_config.fps,
            "bitrate": self.stream_config.bitrate,
            "frames_sent": self.frames_sent,
            "audio": self.config.audio,
            "audio_frames_sent": self.audio_frames_sent,
            "bytes_sent": self.bytes_sent,
            "version": self.config.version,
            "handler_errors": self.handler_errors,
            "unauthenticated": len(self._silent) + len(self._greeted),
            "unauthenticated_dropped": self.unauthenticated_dropped,
        }

    # --- stream state -------------------------------------------------------

    def _record(self, what: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.emit(
                "primary",
                what=what,
                stream_state=self.stream.state.name,
                epoch=self.stream.epoch,
                backend=self.backend,
                **fields,
            )

    def _set_state(self, target: StreamState, why: str, *, announce: bool = True) -> None:
        try:
            self.stream.transition(target, monotonic())
        except EpochsExhausted:
            self._restart_epochs()
            self.stream.transition(target, monotonic())
        log.info("stream %s epoch %d (%s)", target.name, self.stream.epoch, why)
        self._record("state", reason=why)
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()
        if not announce:
            return
        now = monotonic()
        hold = target is StreamState.ACTIVE and (
            Deviation.ACTIVE_BEFORE_KEYFRAME not in self.config.deviations
        )
        for link in self.links.values():
            link.held_active, link.held_event = False, None  # a newer truth replaces it
            if hold and link.conn.accepted and link.needs_keyframe:
                link.held_active = True  # it missed the keyframe (congested): KEY-1
                continue
            if link.conn.send_stream_state(now):
                link.driver.poke()

    def _restart_epochs(self) -> None:
        """Epochs never wrap (2.4): every Viewer is sent away (BYE), numbering restarts at 0."""
        now = monotonic()
        log.warning("epoch %d is the last one: closing every connection", self.stream.epoch)
        for link in self.links.values():
            link.conn.close(now, "epoch space exhausted: reconnect")
            link.driver.poke()
        self.stream.restart_epochs(now)
        self._record("state", reason="epochs restarted: 2^32 - 1 was the last")

    def _broadcast_event(self, event: StreamEvent) -> None:
        now = monotonic()
        for link in self.links.values():
            if link.held_active:
                link.held_event = event  # follows its held ACTIVE (EVT-2)
                continue
            if link.conn.send_stream_event(event.value, now):
                link.driver.poke()

    async def _begin_epoch(self, why: str, event: StreamEvent, settle: float = 0.0) -> None:
        self._set_state(StreamState.RECONFIGURING, why)
        self._broadcast_event(event)
        for link in self.links.values():
            link.needs_keyframe = True
        self._close_encoder()
        if settle > 0:
            await asyncio.sleep(settle)  # holding the lock: nothing is encoded meanwhile
        await self._open_encoder()
        self._force_keyframe = True
        self._resuming = False

    async def _open_encoder(self, backend: str | None = None) -> None:
        self._close_encoder()
        cfg = self.stream_config
        chosen = backend or self.config.codec_backend
        self.encoder = await asyncio.to_thread(
            open_encoder,
            chosen,
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            bitrate=cfg.bitrate,
            gop=cfg.gop,
        )
        self.source = SyntheticSource(cfg.width, cfg.height, cfg.fps, self.stream.epoch)
        if self.config.replay:
            loop = SyntheticSource(cfg.width, cfg.height, cfg.fps, self.stream.epoch)
            self.encoder = await asyncio.to_thread(ReplayEncoder, self.encoder, loop)
        self.backend = self.encoder.backend
        # A new epoch is a new audio stream too: its tone and its packets carry the epoch.
        self.audio_encoder = open_audio_encoder(self.stream.epoch) if self.config.audio else None
        self._audio_next_at = None
        self._record("encoder", width=cfg.width, height=cfg.height, fps=cfg.fps)

    def _close_encoder(self) -> None:
        if self.encoder is not None:
            with contextlib.suppress(Exception):
                self.encoder.close()
            self.encoder = None

    # --- media --------------------------------------------------------------

    async def _encode_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while not self._stopping:
            interval = 1.0 / self.stream_config.fps
            next_tick += interval
            try:
                async with self._lock:
                    await self._tick()
            except Exception:  # an encoder bug must not kill the Primary silently
                log.exception("encoder tick failed")
            delay = next_tick - loop.time()
            if delay < -interval:
                next_tick = loop.time()  # fell behind: skip ticks rather than burst
            await asyncio.sleep(max(0.0, delay))

    async def _tick(self) -> None:
        state = self.stream.state
        producing = state in (StreamState.ACTIVE, StreamState.RECONFIGURING) or self._resuming
        if not producing or self.encoder is None or self.source is None:
            return
        self._check_keyframe_deadline()
        # Late joiners and Viewers that fell behind need a keyframe, but at a bounded
        # rate: forcing one every tick for a congested Viewer would only add congestion.
        waiting = Deviation.NO_JOIN_KEYFRAME not in self.config.deviations and any(
            link.needs_keyframe and self._wants_media(link) for link in self.links.values()
        )
        force = self._force_keyframe or (
            waiting and monotonic() - self._last_keyframe_at > KEYFRAME_MIN_INTERVAL
        )
        picture = next(self.source)
        # Media timestamps are capture times on this host's monotonic clock (µs), so a
        # Viewer on the same host can measure delivery latency from them.
        self._capture_us = round(monotonic() * 1_000_000)
        try:
            units = await asyncio.to_thread(self.encoder.encode, picture, force_keyframe=force)
        except EncoderFailure as exc:
            await self._fall_back(str(exc))
            return
        for unit in units:
            if unit.keyframe:
                self._publish_keyframe(unit)
            elif self.stream.state is StreamState.ACTIVE:
                self._fan_out(unit)
        self._send_audio()

    def _send_audio(self) -> None:
        """The AUDIO frames due by now, while ACTIVE, to Viewers that have the keyframe.

        Sound follows the pictures: a Viewer still waiting for the epoch's keyframe
        gets no audio of it yet, and nothing is sent while PAUSED or RECONFIGURING.
        """
        encoder = self.audio_encoder
        if encoder is None or self.stream.state is not StreamState.ACTIVE:
            self._audio_next_at = None
            return
        now = monotonic()
        if self._audio_next_at is None or now - self._audio_next_at > AUDIO_CATCH_UP:
            self._audio_next_at = now
        epoch = self.stream.epoch
        while self._audio_next_at <= now:
            capture_us = round(self._audio_next_at * 1_000_000)
            self._audio_next_at += AUDIO_PACKET
            for packet in encoder.next_packets():
                self._fan_out_audio(packet.data, epoch, capture_us)

    def _fan_out_audio(self, data: bytes, epoch: int, capture_us: int) -> None:
        now = monotonic()
        for link in self.links.values():
            if not self._wants_media(link) or link.needs_keyframe or not link.conn.socket_open:
                continue
            if link.driver.writer.transport.get_write_buffer_size() > self.config.max_unsent:
                continue
            link.conn.send_media(
                FrameType.AUDIO, data, epoch=epoch, now=now, timestamp_us=capture_us
            )
            self.audio_frames_sent += 1
            link.driver.poke()

    def _publish_keyframe(self, unit: Any) -> None:
        """CSD + keyframe to every accepted Viewer, then ACTIVE if this starts the epoch."""
        self._force_keyframe = False
        self._last_keyframe_at = monotonic()
        self._keyframe_requested_at = None
        activate = self.stream.state is not StreamState.ACTIVE
        if activate and Deviation.ACTIVE_BEFORE_KEYFRAME in self.config.deviations:
            self._activate()
            activate = False
        self._fan_out(unit)
        if activate:
            self._activate()

    def _activate(self) -> None:
        resumed = self.stream.state is StreamState.PAUSED
        # STATE-8 broken: the resume reaches the Viewers only as its STREAM_EVENT.
        told = not (resumed and Deviation.RESUME_AS_EVENT in self.config.deviations)
        self._set_state(StreamState.ACTIVE, "first keyframe transmitted", announce=told)
        self._active.set()
        self._broadcast_event(StreamEvent.RESUMED if resumed else StreamEvent.RECONFIG_DONE)
        self._resuming = False

    def _fan_out(self, unit: Any) -> None:
        now = monotonic()
        epoch = self.stream.epoch
        media_epoch = epoch
        if self._stale_epoch_due == epoch and not unit.keyframe:
            # EPOCH-2 broken, rarely: this one delta frame carries the epoch before.
            self._stale_epoch_due = None
            media_epoch = epoch - 1
        for link in self.links.values():
            conn = link.conn
            if not self._wants_media(link) or not conn.socket_open:
                continue
            if link.driver.writer.transport.get_write_buffer_size() > self.config.max_unsent:
                link.needs_keyframe = True  # it missed frames: resume it from a keyframe
                continue
            if unit.keyframe:
                conn.send_media(
                    FrameType.CSD,
                    unit.csd or b"",
                    epoch=epoch,
                    now=now,
                    timestamp_us=self._capture_us,
                )
                link.needs_keyframe = False
            elif link.needs_keyframe and not self._deltas_before_keyframe:
                continue  # KEY-4: P-frames are useless without the keyframe before them
            conn.send_media(
                FrameType.VIDEO,
                unit.data,
                epoch=media_epoch,
                now=now,
                timestamp_us=self._capture_us,
                keyframe=unit.keyframe,
            )
            self.frames_sent += 1
            self.bytes_sent += len(unit.data)
            if unit.keyframe and link.held_active:
                self._release_active(link, now)
            link.driver.poke()

    def _release_active(self, link: ViewerLink, now: float) -> None:
        """The held ACTIVE (and its event) right after the Viewer's own keyframe."""
        event, link.held_active, link.held_event = link.held_event, False, None
        if self.stream.state is not StreamState.ACTIVE:
            return
        link.conn.send_stream_state(now)
        if event is not None:
            link.conn.send_stream_event(event.value, now)

    @property
    def _deltas_before_keyframe(self) -> bool:
        """KEY-4 broken: a Viewer still waiting for its keyframe gets the P-frames anyway."""
        return Deviation.DELTA_BEFORE_KEYFRAME in self.config.deviations

    def _wants_media(self, link: ViewerLink) -> bool:
        """NEG-1: media only after STREAM_ACCEPTED (unless told to break that rule)."""
        if link.conn.accepted:
            return True
        early = Deviation.MEDIA_BEFORE_ACCEPT in self.config.deviations
        return early and link.conn.authenticated

    def _check_keyframe_deadline(self) -> None:
        """KEY-2: no keyframe within the answer time means the encoder is restarted."""
        asked = self._keyframe_requested_at
        if asked is not None and monotonic() - asked > self.config.timings.keyframe_answer:
            self._keyframe_requested_at = None
            asyncio.get_running_loop().create_task(self.restart_encoder("keyframe not produced"))

    async def _fall_back(self, reason: str) -> None:
        """A hardware encoder failed mid-stream: software, as a reconfiguration (EPOCH-1)."""
        log.warning("encoder %s failed (%s); falling back to software", self.backend, reason)
        self._set_state(StreamState.RECONFIGURING, f"backend fallback: {reason}")
        self._broadcast_event(StreamEvent.BACKEND_FALLBACK)
        await self._open_encoder("software")
        self._force_keyframe = True

    # --- connections --------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        session_id = f"{os.getpid():x}-{next(self._sessions)}"
        conn = PrimaryConnection(
            self.config.secret,
            self.stream,
            self.nonces,
            session_id=session_id,
            version=self.config.version,
            timings=self.config.timings,
            deviations=self.config.deviations,
        )
        conn.connection_made(monotonic())
        self._make_room_for_one_more()
        holder: list[ViewerLink] = []
        driver = StreamDriver(
            conn, reader, writer, lambda event, now: self._guarded(holder[0], event, now)
        )
        link = ViewerLink(conn, driver, peer)
        holder.append(link)
        self.links[session_id] = link
        self._silent[session_id] = link
        # Per-connection lines only at DEBUG until the peer authenticates: a flood of
        # sockets must not become a flood of log lines (the status line counts them).
        log.debug("connection from %s (session %s)", peer, session_id)
        try:
            await link.driver.run()
        except Exception:  # a bug in the driver: logged and counted, never silent
            self._handler_failed(link, "connection driver")
        finally:
            self.links.pop(session_id, None)
            self._silent.pop(session_id, None)
            self._greeted.pop(session_id, None)
            level = logging.INFO if link.was_authenticated else logging.DEBUG
            log.log(level, "viewer %s gone: %s", peer, conn.close_reason)

    def _make_room_for_one_more(self) -> None:
        """The unauthenticated cap: close the oldest unauthenticated connections first."""
        now = monotonic()
        while len(self._silent) + len(self._greeted) >= self.config.max_unauthenticated:
            waiting = self._silent or self._greeted
            link = waiting.pop(next(iter(waiting)))
            if link.conn.socket_open and not link.conn.authenticated:
                link.conn.close(now, "too many unauthenticated connections")
                link.driver.poke()
                self.unauthenticated_dropped += 1

    async def _guarded(self, link: ViewerLink, event: Event, now: float) -> None:
        """No exception escapes a connection handler: each is a bug, logged and counted."""
        try:
            await self._on_event(link, event, now)
        except Exception:  # the Viewer is told with ERROR internal
            self._handler_failed(link, f"handling {type(event).__name__}")

    def _handler_failed(self, link: ViewerLink, where: str) -> None:
        self.handler_errors += 1
        log.exception("viewer %s: %s failed (handler error #%d)", link.peer, where,
                      self.handler_errors)
        link.conn.abort(monotonic(), f"{where} failed")
        link.driver.poke()

    async def _on_event(self, link: ViewerLink, event: Event, now: float) -> None:
        if isinstance(event, ViewerAuthenticated):
            link.was_authenticated = True
            log.info("viewer %s authenticated (session %s)", link.peer, event.session_id)
        session = link.conn.session_id
        if isinstance(event, MessageReceived) and isinstance(event.message, Hello):
            if event.acted_on and self._silent.pop(session, None) is not None:
                self._greeted[session] = link
        elif isinstance(event, ViewerAuthenticated | CloseSocket):
            self._silent.pop(session, None)
            self._greeted.pop(session, None)
        if isinstance(event, StreamRequested):
            await self._negotiate(link, event, now)
        elif isinstance(event, KeyframeRequested):
            if Deviation.IGNORE_KEYFRAME_REQUEST in self.config.deviations:
                return
            self._force_keyframe = True
            if self._keyframe_requested_at is None:
                self._keyframe_requested_at = now

    async def _negotiate(self, link: ViewerLink, event: StreamRequested, now: float) -> None:
        if not link.conn.awaiting_answer:
            return  # the connection closed after the request was queued: nobody to answer
        request, cfg = event.request, self.stream_config
        if request.codec.lower() != "h264":
            link.conn.reject_stream(now, f"codec {request.codec} not offered; use h264")
            return
        caps = event.caps
        if (
            caps is not None
            and caps.max_width
            and caps.max_height
            and (cfg.width > caps.max_width or cfg.height > caps.max_height)
        ):
            link.conn.reject_stream(
                now,
                f"stream is {cfg.width}x{cfg.height}, above the viewer's "
                f"{caps.max_width}x{caps.max_height}",
            )
            return
        if Deviation.MEDIA_BEFORE_ACCEPT in self.config.deviations:
            # The broken Primary starts the media before it has accepted anything.
            link.needs_keyframe = True
            await asyncio.sleep(0.5)
            if not link.conn.awaiting_answer:
                return
            now = monotonic()
        link.conn.accept_stream(
            now,
            codec="h264",
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            bitrate=cfg.bitrate,
            profile="baseline",
            backend=self.backend,
        )
        link.needs_keyframe = True  # KEY-3: the next tick forces a keyframe for it
        if self._deltas_before_keyframe:
            # The broken Primary lets the joiner's keyframe wait one rate-limit period (well
            # inside KEY-3's 1 s) and sends it the P-frames of that wait (KEY-4 broken).
            self._last_keyframe_at = monotonic()

