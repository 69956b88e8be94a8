"""The reference Viewer: the sans-IO Viewer with a real decoder and a render audit.

Everything about state lives in `reference.protocol.viewer`; this module opens
sockets when the core says so, runs the decoder the core asks for, reports
what the decoder did, reads the epoch and frame number back from every
rendered picture, and writes the Viewer telemetry of PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reference.peers.driver import StreamDriver, monotonic
from reference.protocol import telemetry
from reference.protocol.deviations import Deviation
from reference.protocol.events import (
    CloseSocket,
    CreateDecoder,
    Event,
    FlushDecoder,
    MediaToDecode,
    ReconnectDue,
    ReleaseDecoder,
    StateChanged,
)
from reference.protocol.frames import Frame, FrameType
from reference.protocol.messages import Caps, SetStream
from reference.protocol.states import ViewerState
from reference.protocol.timings import DEFAULT_TIMINGS, Timings
from reference.protocol.viewer import ViewerConnection

log = logging.getLogger("reference.viewer")

TelemetrySink = Callable[[dict[str, Any]], None]
# The `audio` telemetry record (PROTOCOL.md 9.2): the audio output created / released.
AUDIO_RECORD = telemetry.RecordKind.AUDIO.value
MAX_LATENCY_SAMPLES = 200_000
# What `leak_on_reconnect` keeps per connect, held at module level as a cache that never
# evicts would be: it outlives the Viewer object, like a real leak.
LEAK_PER_CONNECT = 1 << 20
_LEAKED: list[bytes] = []


@dataclass
class ViewerConfig:
    host: str
    port: int
    secret: str
    version: int = 2
    timings: Timings = DEFAULT_TIMINGS
    decode: bool = True
    codec_backend: str = "auto"
    viewer_id: str = "viewer"
    seed: int = 0
    deviations: frozenset[Deviation] = frozenset()
    max_width: int | None = None
    max_height: int | None = None


@dataclass
class ViewerStats:
    rendered: int = 0
    decoded: int = 0
    dropped: int = 0
    audit_failures: int = 0
    connects: int = 0
    audio_frames: int = 0  # AUDIO frames decoded
    audio_samples: int = 0  # samples they produced (48 kHz)
    last_audit: tuple[int, int] | None = None
    latencies: list[float] = field(default_factory=list)
    # Seconds each picture's decode call took (wall clock, in its worker thread).
    decode_times: list[float] = field(default_factory=list)


class ReferenceViewer:
    def __init__(self, config: ViewerConfig, *, sink: TelemetrySink | None = None) -> None:
        self.config = config
        self.sink = sink
        self.conn = ViewerConnection(
            config.secret,
            version=config.version,
            timings=config.timings,
            caps=Caps(
                codecs=("h264",),
                max_width=config.max_width,
                max_height=config.max_height,
                hw_decode=config.codec_backend != "software",
            ),
            request=SetStream(codec="h264"),
            rng=random.Random(config.seed),
            deviations=config.deviations,
        )
        self.stats = ViewerStats()
        self.decoder: Any = None
        self.decoder_backend: str | None = None
        # The audio output (a real client's AudioTrack): opened at the first AUDIO frame
        # of a session, released with the video decoder (STATE-7). Its Opus decoder is
        # recreated for every epoch, since every epoch is a new Opus stream.
        self.audio_output_epoch: int | None = None
        self._audio_decoder: Any = None
        self.state_changed = asyncio.Event()
        self._driver: StreamDriver | None = None
        self._reconnect = asyncio.Event()
        self._stop = asyncio.Event()
        self._emit(
            {
                "event": "hello",
                "implementation": "lvs-reference-viewer",
                "version": config.version,
                "decode": config.decode,
            }
        )

    @property
    def state(self) -> ViewerState:
        return self.conn.state

    def _emit(self, record: dict[str, Any]) -> None:
        if self.sink is not None:
            record.setdefault("t", round(monotonic(), 6))
            record.setdefault("viewer", self.config.viewer_id)
            self.sink(record)

    # --- lifecycle ----------------------------------------------------------

    async def run(self, duration: float | None = None) -> None:
        """Connect, and reconnect whenever the core says so, until stopped."""
        stopper = (
            asyncio.get_running_loop().call_later(duration, self._stop.set) if duration else None
        )
        try:
            self._reconnect.set()
            while not self._stop.is_set():
                await self._wait_for_reconnect()
                if self._stop.is_set():
                    break
                await self._connect_once()
        finally:
            if stopper is not None:
                stopper.cancel()
            self._release_decoder()

    def stop(self) -> None:
        self._stop.set()
        self._reconnect.set()
        if self._driver is not None:
            self.conn.close(monotonic(), "viewer stopped")
            self._driver.poke()

    def set_background(self, background: bool) -> None:
        """The app went to the background or came back (PROTOCOL.md 7.12)."""
        self.conn.set_background(background, monotonic())
        if self._driver is not None:
            self._driver.poke()  # send the keyframe request, write the state record

    def kill_connection(self) -> bool:
        """Drop the socket at once, with no BYE, as a vanished network would (RST).

        The core then sees the connection lost and reconnects as usual (RECON-1).
        False if there was no connection to drop.
        """
        driver = self._driver
        if driver is None or driver.writer.is_closing():
            return False
        driver.writer.transport.abort()
        driver.poke()
        return True

    async def _wait_for_reconnect(self) -> None:
        while not self._reconnect.is_set() and not self._stop.is_set():
            deadline = self.conn.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconnect.wait(), timeout)
            self.conn.handle_timers(monotonic())
            for event in self.conn.next_events():
                await self._on_event(event, monotonic())
        self._reconnect.clear()

    async def _connect_once(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.config.host, self.config.port)
        except OSError as exc:
            # The system's words ("Connection refused"), not asyncio's "Connect call failed";
            # name lookups (negative errno) carry theirs in strerror.
            errno = exc.errno or 0
            reason = os.strerror(errno) if errno > 0 else str(exc.strerror or exc)
            self.conn.connection_failed(monotonic(), reason)
            self._emit({"event": "connection", "action": "failed", "reason": reason})
            return
        self.stats.connects += 1
        if Deviation.LEAK_ON_RECONNECT in self.config.deviations:
            # Filled, not zeroed: zero pages from calloc would not show in the RSS.
            _LEAKED.append(bytes([0xA5]) * LEAK_PER_CONNECT)
        self._emit({"event": "connection", "action": "connect"})
        self.conn.connection_made(monotonic())
        self._driver = StreamDriver(self.conn, reader, writer, self._on_event)
        try:
            await self._driver.run()
        finally:
            self._driver = None
            self.conn.connection_lost(monotonic(), "socket closed")
            for event in self.conn.next_events():
                await self._on_event(event, monotonic())

    # --- events from the core -----------------------------------------------

    async def _on_event(self, event: Event, now: float) -> None:
        for record in telemetry.records_from_event(event, now, self.config.viewer_id):
            self._emit(record)
        if isinstance(event, StateChanged):
            log.info(
                "%s: %s -> %s (%s)",
                self.config.viewer_id,
                event.previous.value,
                event.state.value,
                event.reason,
            )
            self.state_changed.set()
        elif isinstance(event, MediaToDecode):
            await self._decode(event.frame)
        elif isinstance(event, CreateDecoder):
            self._create_decoder()
        elif isinstance(event, FlushDecoder):
            if self.decoder is not None:
                self.decoder.reset()
            self._audio_decoder = None  # the new epoch's Opus stream starts afresh
        elif isinstance(event, ReleaseDecoder):
            self._release_decoder()
        elif isinstance(event, ReconnectDue):
            self._reconnect.set()
        elif isinstance(event, CloseSocket):
            pass  # the driver closes the transport

    def _create_decoder(self) -> None:
        if not self.config.decode:
            return
        from reference.codecs import open_decoder

        self.decoder = open_decoder(self.config.codec_backend)
        self.decoder_backend = self.decoder.backend
        log.info("%s: decoder %s", self.config.viewer_id, self.decoder_backend)

    def _release_decoder(self) -> None:
        if self.decoder is not None:
            with contextlib.suppress(Exception):
                self.decoder.close()
            self.decoder = None
        self._release_audio()

    def _release_audio(self) -> None:
        self._audio_decoder = None
        if self.audio_output_epoch is not None:
            self.audio_output_epoch = None
            self._emit({"event": AUDIO_RECORD, "action": "release", "epoch": None})

    def _play_audio(self, frame: Frame) -> None:
        """Decode one Opus packet into the audio output, opening the output if need be."""
        import av

        from reference.media.audio import SAMPLE_RATE

        if self.audio_output_epoch is None:
            self.audio_output_epoch = frame.epoch
            self._emit({
                "event": AUDIO_RECORD, "action": "create", "epoch": frame.epoch,
                "codec": "opus", "sample_rate": SAMPLE_RATE,
            })
        if self._audio_decoder is None:
            self._audio_decoder = av.CodecContext.create("opus", "r")
        try:
            frames = self._audio_decoder.decode(av.Packet(frame.payload))
        except av.error.FFmpegError as exc:
            self._emit({"event": "decode_error", "epoch": frame.epoch, "seq": frame.sequence,
                        "error": f"audio: {exc}"})
            return
        self.stats.audio_frames += 1
        self.stats.audio_samples += sum(f.samples for f in frames)

    async def _decode(self, frame: Frame) -> None:
        now = monotonic()
        epoch = frame.epoch
        if frame.type is FrameType.AUDIO:
            if self.config.decode:
                self._play_audio(frame)
            return
        if frame.type is FrameType.VIDEO and len(self.stats.latencies) < MAX_LATENCY_SAMPLES:
            # Capture-to-delivery time: the Primary stamps capture times on the host clock.
            self.stats.latencies.append(now - frame.timestamp_us / 1_000_000)
        if not self.config.decode:
            # Header-only mode for load tests: trust the headers as if decoded.
            if frame.type is FrameType.CSD:
                self.conn.csd_applied_to_decoder(epoch, now)
            else:
                self.conn.picture_decoded(epoch, frame.is_keyframe, now)
                self._after_picture(frame, None, now)
            return
        from reference.codecs import DecodeError

        decoder = self.decoder
        if decoder is None:
            return
        if frame.type is FrameType.CSD:
            try:
                decoder.configure(frame.payload)
            except DecodeError as exc:
                self._emit(
                    {
                        "event": "decode_error",
                        "epoch": epoch,
                        "seq": frame.sequence,
                        "error": str(exc),
                    }
                )
                return
            self.conn.csd_applied_to_decoder(epoch, now)
            return

        def decode() -> list[Any]:
            began = time.perf_counter()
            try:
                pictures: list[Any] = decoder.decode(
                    frame.payload, keyframe=frame.is_keyframe, pts=frame.timestamp_us)
                return pictures
            finally:
                if len(self.stats.decode_times) < MAX_LATENCY_SAMPLES:
                    self.stats.decode_times.append(time.perf_counter() - began)

        try:
            pictures = await asyncio.to_thread(decode)
        except DecodeError as exc:
            self._emit(
                {"event": "decode_error", "epoch": epoch, "seq": frame.sequence, "error": str(exc)}
            )
            return
        if self.decoder is not decoder or self.conn.background:
            # Released or flushed while decoding, or the surface went with the background:
            # the picture belongs to the past.
            return
        now = monotonic()
        for picture in pictures:
            self.stats.decoded += 1
            self._emit(
                {
                    "event": "decoded",
                    "epoch": epoch,
                    "seq": frame.sequence,
                    "key": frame.is_keyframe,
                }
            )
            self.conn.picture_decoded(epoch, frame.is_keyframe, now)
            self._after_picture(frame, picture, now)

    def _after_picture(self, frame: Frame, picture: Any, now: float) -> None:
        """Render only in STREAMING, and audit what would be shown."""
        if self.conn.state is not ViewerState.STREAMING:
            return
        audited: tuple[int, int] | None = None
        if picture is not None:
            from reference.media.source import audit_picture

            result = audit_picture(picture.frame)
            if result is None:
                self.stats.audit_failures += 1
            else:
                audited = (result.epoch, result.frame_number)
        self.stats.rendered += 1
        self.stats.last_audit = audited
        self._emit(
            {
                "event": "rendered",
                "epoch": audited[0] if audited else (None if picture is not None else frame.epoch),
                "frame": audited[1] if audited else None,
                "audited": picture is not None,
                "stream_epoch": self.conn.epoch,
                "seq": frame.sequence,
            }
        )
