"""An independent LVS version-2 Viewer, written from reference/PROTOCOL.md alone.

It decodes H.264 with PyAV, reads the render-audit marker back from every picture it shows
(PROTOCOL.md 9.4) and writes the telemetry of section 9. SIGUSR1 / SIGUSR2 send it to the
background and back (7.12). `--bug NAME` plants one rule violation (README.md).

    python tests/independent/lvs_viewer.py --connect 127.0.0.1:7450 --secret s3cret \\
        --telemetry /tmp/v1.jsonl --viewer-id v1
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lvs_http as http
import lvs_wire as w

BUGS = {
    "ignores_snapshot": "EVT-1",
    "flap": "STATE-6",
    "recover_while_paused": "STATE-6",
    "early_keyframe_request": "NEG-4",
    "no_keyframe_retry": "WD-2",
    "no_backoff": "RECON-1",
    "decode_stale_epoch": "EPOCH-3",
    "hello_not_first": "VER-1",
    "no_flush": "STATE-4",
    "apply_stale_state": "EPOCH-4",
    "slow_heartbeat": "HB-1",
    "reconnect_on_pause": "STATE-5",
    "streaming_without_keyframe": "STATE-3",
    "keeps_decoder": "STATE-7",
    "late_watchdog": "WD-1",
    "no_liveness": "HB-2",
    "silent_close": "FRAME-2",
    "accept_rolls_back": "NEG-2",
}

# Default timings (section 10).
HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TIMEOUT = 6.0
AUTH_TIMEOUT = 5.0
ACCEPT_TIMEOUT = 5.0
STALL_TIMEOUT = 2.0
RETRY_INTERVAL = 1.0
RETRIES = 5
LEGACY_FALLBACK = 3.0
RECONNECT_INITIAL = 0.25
RECONNECT_MAX = 5.0
FRAME_TIMEOUT = 10.0

RECEIVE_LIMITS = {w.CONTROL: w.CONTROL_LIMIT, w.CSD: w.MEDIA_LIMIT, w.VIDEO: w.MEDIA_LIMIT,
                  w.AUDIO: w.MEDIA_LIMIT}

# The seven Viewer states (7.1).
DISCONNECTED = "DISCONNECTED"
SOCKET_CONNECTED = "SOCKET_CONNECTED"
AUTHENTICATING = "AUTHENTICATING"
NEGOTIATING = "NEGOTIATING"
RECONFIGURING = "RECONFIGURING"
STREAMING = "STREAMING"
RECOVERING = "RECOVERING"
DECODER_STATES = (RECONFIGURING, STREAMING, RECOVERING)

# Causes after which no reconnect is scheduled (7.8).
FINAL_CAUSES = ("auth_failed", "viewer_stopped")


def log(text: str) -> None:
    print(f"[{time.monotonic():.3f}] viewer: {text}", file=sys.stderr, flush=True)


class Telemetry:
    """JSON Lines, flushed record by record (9.1), on CLOCK_MONOTONIC (9.3)."""

    def __init__(self, path: str | None, viewer_id: str) -> None:
        # Open for the Viewer's whole life; every record is flushed as written (9.1).
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.viewer_id = viewer_id

    def write(self, event: str, **fields: Any) -> None:
        if self.file is None:
            return
        record = {"t": time.monotonic(), "viewer": self.viewer_id, "event": event, **fields}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


class Decoder:
    """H.264 through PyAV. CSD is kept and put in front of each keyframe, since libavcodec
    does not take a packet holding only SPS and PPS."""

    def __init__(self) -> None:
        self.ctx = av.CodecContext.create("h264", "r")
        self.csd = b""
        self.opus: Any = None

    def apply_csd(self, csd: bytes) -> None:
        self.csd = csd

    def decode(self, payload: bytes, key: bool) -> list[av.VideoFrame]:
        data = self.csd + payload if key else payload
        return list(self.ctx.decode(av.Packet(data)))

    def decode_audio(self, payload: bytes) -> None:
        if self.opus is None:
            self.opus = av.CodecContext.create("opus", "r")
        with contextlib.suppress(Exception):
            self.opus.decode(av.Packet(payload))

    def flush(self) -> None:
        # A fresh context: nothing of the old epoch can come out of it.
        self.ctx = av.CodecContext.create("h264", "r")
        self.csd = b""
        self.opus = None


class Session:
    """One TCP connection, from SOCKET_CONNECTED to DISCONNECTED."""

    def __init__(self, viewer: Viewer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.v = viewer
        self.tel = viewer.tel
        self.bugs = viewer.bugs
        self.reader, self.writer = reader, writer
        self.loop = asyncio.get_running_loop()
        self.seq = 0
        self.state = DISCONNECTED
        self.done = asyncio.Event()
        self.end_cause = "server_closed"
        # Protocol knowledge of this connection only (RECON-1: nothing survives it).
        self.proto_seen = False
        self.legacy = viewer.version == 1  # infer state from media (7.9)
        self.provisional = False  # no PROTO came: version 1 unless a STREAM_STATE says 2
        self.epoch: int | None = None
        self.server_state: int | None = None
        self.decoder: Decoder | None = None
        self.csd_applied = False
        self.keyframe_decoded = False
        self.snapshot_seen = False
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.stall_timeout = STALL_TIMEOUT * (1.6 if "late_watchdog" in self.bugs else 1.0)
        self.stall_remaining = self.stall_timeout
        self.stall_deadline: float | None = None
        self.recovery_cause: str | None = None
        self.attempt = 0
        self.accepted = False
        self.pending: tuple[w.Frame, bool, Decoder] | None = None  # a VIDEO frame to decode

    # -- timers
    def _later(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        self._cancel(name)
        self.timers[name] = self.loop.call_later(delay, fn)

    def _cancel(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle:
            handle.cancel()

    # -- output
    def send(self, message: w.Message) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(w.pack(w.CONTROL, message.encode(), self.seq))
        self.seq = (self.seq + 1) & w.UINT32_MAX

    def go(self, state: str, cause: str, reason: str) -> None:
        if state == self.state:
            return
        previous, self.state = self.state, state
        self.tel.write("state", state=state, previous=previous, cause=cause, reason=reason,
                       epoch=self.epoch, server_state=self.server_state)
        log(f"{previous} -> {state}: {reason}")
        if state == STREAMING:
            self.v.attempt = 0  # 7.8: reaching STREAMING resets the backoff
        if state != RECOVERING:
            self._cancel("retry")
            self.recovery_cause = None
        if state == STREAMING and "flap" in self.bugs:
            self._later("flap", 1.0, self._flap)

    # -- connection lifecycle
    async def run(self) -> str:
        self.tel.write("connection", action="connect")
        self.go(SOCKET_CONNECTED, "tcp_connected", "TCP connection established")
        if "hello_not_first" in self.bugs:
            self.send(w.msg("HEARTBEAT"))
        self.send(w.msg("HELLO", client="viewer", version=self.v.version))
        self._later("auth", AUTH_TIMEOUT, self._auth_timed_out)
        frames = w.FrameBuffer(RECEIVE_LIMITS)
        last_rx = time.monotonic()
        reader_task = asyncio.ensure_future(self._read_loop(frames, last_rx))
        done_task = asyncio.ensure_future(self.done.wait())
        await asyncio.wait([reader_task, done_task], return_when=asyncio.FIRST_COMPLETED)
        for task in (reader_task, done_task):
            task.cancel()
        return self.end_cause

    async def _read_loop(self, frames: w.FrameBuffer, last_rx: float) -> None:
        try:
            while not self.done.is_set():
                now = time.monotonic()
                silence = float("inf") if "no_liveness" in self.bugs else HEARTBEAT_TIMEOUT
                deadline = last_rx + silence
                frame_deadline = None
                if frames.frame_started is not None:
                    frame_deadline = frames.frame_started + FRAME_TIMEOUT
                    deadline = min(deadline, frame_deadline)
                try:
                    data = await asyncio.wait_for(self.reader.read(65536), max(0.0, deadline - now))
                except TimeoutError:
                    if frame_deadline is not None and time.monotonic() >= frame_deadline:
                        self.fatal("timeout", "a frame did not complete in time")
                    else:
                        self.disconnect("heartbeat_timeout", "the Primary has been silent too long")
                    return
                if not data:
                    self.disconnect("server_closed", "the Primary closed the connection")
                    return
                last_rx = time.monotonic()
                try:
                    for frame in frames.feed(data, last_rx):
                        self.on_frame(frame)
                        await self.decode_pending()
                        if self.done.is_set():
                            return
                except w.ProtocolViolation as bad:
                    frames.discard()
                    self.fatal(bad.code, bad.reason)
                    return
        except (ConnectionError, OSError) as exc:
            self.disconnect("socket_error", f"socket failed: {exc}")

    def fatal(self, code: str, reason: str) -> None:
        if "silent_close" not in self.bugs:
            self.send(w.msg("ERROR", code=code, reason=reason[:200]))
        self.disconnect("protocol_error", f"bad input from the Primary ({code})")

    def disconnect(self, cause: str, reason: str) -> None:
        if self.done.is_set():
            return
        for name in list(self.timers):
            self._cancel(name)
        with contextlib.suppress(Exception):
            self.writer.close()
        self.tel.write("connection", action="closed", reason=reason)
        if self.decoder is not None:
            self.decoder = None
            if "keeps_decoder" not in self.bugs:
                self.tel.write("decoder", action="release", epoch=None)
        self.go(DISCONNECTED, cause, reason)
        self.end_cause = cause
        self.done.set()

    def stop(self) -> None:
        self.send(w.msg("BYE", reason="viewer stopping"))
        self.disconnect("viewer_stopped", "told to stop")

    def kill(self) -> None:
        """Drop the socket at once with a RST and no BYE, as a vanished network would."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.disconnect("socket_error", "connection killed through the control interface")

    # -- handshake timers
    def _auth_timed_out(self) -> None:
        if self.state in (SOCKET_CONNECTED, AUTHENTICATING):
            self.send(w.msg("ERROR", code="timeout", reason="no AUTH_OK in time"))
            self.disconnect("handshake_timeout", "the handshake did not finish in time")

    def _accept_timed_out(self) -> None:
        if self.state == NEGOTIATING:
            self.send(w.msg("ERROR", code="timeout", reason="no answer to SET_STREAM in time"))
            self.disconnect("handshake_timeout", "SET_STREAM got no answer in time")

    def _heartbeat(self) -> None:
        self.send(w.msg("HEARTBEAT"))
        interval = HEARTBEAT_INTERVAL * (1.75 if "slow_heartbeat" in self.bugs else 1.0)
        self._later("heartbeat", interval, self._heartbeat)

    def _legacy_confirmed(self) -> None:
        log("no STREAM_STATE within the fallback: the Primary speaks version 1")
        self.timers.pop("legacy", None)
        self.legacy = True
        self.evaluate()
        self.update_watchdog()

    # -- input
    def on_frame(self, frame: w.Frame) -> None:
        if frame.ftype == w.CONTROL:
            message = w.parse(frame.payload)
            handler = getattr(self, f"on_{message.name.lower()}", None)
            if message.name in w.KNOWN and handler is not None:
                handler(message)
            return  # unknown messages are ignored (VER-3)
        self.on_media(frame)
        self.update_watchdog()

    def on_proto(self, m: w.Message) -> None:
        if self.state != SOCKET_CONNECTED:
            return  # checked only where acted on (PROTOCOL.md 14: act time)
        version = int(m.fields["version"])
        if version < 1 or version > self.v.version:
            raise w.ProtocolViolation("version", f"PROTO version {version} not offered")
        self.proto_seen = True
        if int(m.fields["version"]) == 1:
            self.legacy = True

    def on_auth_challenge(self, m: w.Message) -> None:
        if self.state != SOCKET_CONNECTED:
            return
        if not w.NONCE_RE.match(m.fields["nonce"]):
            raise w.ProtocolViolation("bad_field", "nonce is not 32 lower-case hex digits")
        # No PROTO before the challenge: provisionally version 1 (7.9).
        self.provisional = not self.proto_seen and self.v.version >= 2
        self.send(w.msg("AUTH", response=w.auth_response(self.v.secret, m.fields["nonce"])))
        self.go(AUTHENTICATING, "auth_challenge", "challenge answered")

    def on_auth_ok(self, _m: w.Message) -> None:
        if self.state != AUTHENTICATING:
            return
        self._cancel("auth")
        self.go(NEGOTIATING, "auth_ok", "authenticated")
        self._later("heartbeat", HEARTBEAT_INTERVAL, self._heartbeat)
        if not self.proto_seen and not self.legacy:
            self._later("legacy", LEGACY_FALLBACK, self._legacy_confirmed)
        self.send(w.msg("CAPS", codecs="h264", hw_decode=0, decoder="libavcodec h264"))
        self.send(w.msg("SET_STREAM", codec="h264"))
        if "early_keyframe_request" in self.bugs:
            self.send(w.msg("REQ_KEYFRAME", epoch=self.epoch or 0))
        self._later("accept", ACCEPT_TIMEOUT, self._accept_timed_out)

    def on_auth_fail(self, m: w.Message) -> None:
        if self.state == AUTHENTICATING:
            self.disconnect("auth_failed", f"authentication refused ({m.fields['reason']})")

    def on_session(self, m: w.Message) -> None:
        log(f"session {m.fields['id']}")

    def on_bye(self, _m: w.Message) -> None:
        self.disconnect("server_bye", "the Primary said goodbye")

    def on_error(self, m: w.Message) -> None:
        self.disconnect("server_error", f"the Primary reported {m.fields['code']}")

    def on_stream_event(self, m: w.Message) -> None:
        log(f"event {m.positional[0]} epoch {m.fields['epoch']}")  # never a state change (EVT-1)
        if "ignores_snapshot" in self.bugs and self.state in (NEGOTIATING, *DECODER_STATES):
            code = {"RECONFIG_DONE": 1, "RESUMED": 1, "RECONFIG_STARTED": 2,
                    "ENCODER_RESTARTED": 2, "PAUSED": 3, "STOPPED": 4}.get(m.positional[0])
            if code is not None:
                self.apply_state(code, int(m.fields["epoch"]))

    def on_stream_state(self, m: w.Message) -> None:
        if self.v.version < 2 or self.state not in (NEGOTIATING, *DECODER_STATES):
            return
        code, epoch = int(m.positional[0]), int(m.fields["epoch"])
        if self.epoch is not None and epoch < self.epoch and "apply_stale_state" not in self.bugs:
            return  # EPOCH-4
        self.legacy = self.provisional = False  # a STREAM_STATE proves version 2
        self._cancel("legacy")
        self.snapshot_seen = True
        if "ignores_snapshot" in self.bugs:
            return  # this build follows events only
        self.apply_state(code, epoch)

    def adopt_epoch(self, epoch: int) -> bool:
        """Take a newer epoch: flush, forget CSD and keyframe (7.4). True if it was newer."""
        rolls_back = "apply_stale_state" in self.bugs and self.epoch is not None \
            and epoch < self.epoch
        if self.epoch is not None and epoch <= self.epoch and not rolls_back:
            return False
        self.epoch = epoch
        self.csd_applied = False
        self.keyframe_decoded = False
        if self.decoder is not None and "no_flush" not in self.bugs:
            self.decoder.flush()
            self.tel.write("decoder", action="flush", epoch=epoch)
        self.restart_stall()
        return True

    def apply_state(self, code: int, epoch: int) -> None:
        was_active = self.server_state == w.S_ACTIVE
        newer = self.adopt_epoch(epoch)
        self.server_state = code
        if newer and self.state in (STREAMING, RECOVERING):
            self.go(RECONFIGURING, "new_epoch", f"epoch {epoch} replaces the one shown")
        elif code != w.S_ACTIVE and self.state in (STREAMING, RECOVERING):
            if "recover_while_paused" in self.bugs and self.state == RECOVERING:
                pass
            else:
                self.go(RECONFIGURING, "server_state",
                        f"the Primary says {w.STATE_CODE_NAMES[code]}")
        if code == w.S_PAUSED and "reconnect_on_pause" in self.bugs and self.accepted:
            self.disconnect("server_state", "pause taken for the end of the stream")
            return
        if code == w.S_ACTIVE and not was_active:
            log(f"server ACTIVE at epoch {epoch}")
        self.evaluate()
        self.update_watchdog()

    def on_stream_accepted(self, m: w.Message) -> None:
        if self.state != NEGOTIATING:
            return
        self._cancel("accept")
        epoch = m.int_field("epoch")
        rolls_back = "accept_rolls_back" in self.bugs and epoch is not None
        if epoch is not None and (self.epoch is None or epoch > self.epoch or rolls_back):
            self.epoch = epoch
            self.server_state = None  # it belonged to an older epoch
            self.csd_applied = self.keyframe_decoded = False
        self.decoder = Decoder()
        self.accepted = True
        self.tel.write("decoder", action="create", epoch=self.epoch)
        self.go(RECONFIGURING, "stream_accepted",
                f"accepted {m.fields.get('width')}x{m.fields.get('height')} at epoch {epoch}")
        self.restart_stall()
        self.evaluate()
        self.update_watchdog()

    def on_stream_rejected(self, m: w.Message) -> None:
        if self.state == NEGOTIATING:
            self._cancel("accept")  # an answer: staying is our choice (7.7)
            log(f"stream rejected: {m.fields['reason']}")

    # -- media (7.3)
    def on_media(self, f: w.Frame) -> None:
        kind = w.TYPE_NAMES[f.ftype]

        def drop(cause: str, reason: str) -> None:
            self.tel.write("frame", action="drop", type=kind, epoch=f.epoch, seq=f.seq,
                           key=f.key, cause=cause, reason=reason, current_epoch=self.epoch)

        if self.state not in DECODER_STATES or self.decoder is None:
            drop("not_negotiated", "no stream accepted yet")
            return
        # A newer CSD starts its epoch in the provisional window too (PROTOCOL.md 14).
        legacy_csd = (self.legacy or self.provisional) and f.ftype == w.CSD and (
            self.epoch is None or f.epoch > self.epoch)
        if legacy_csd and self.adopt_epoch(f.epoch) and self.state in (STREAMING, RECOVERING):
            self.go(RECONFIGURING, "new_epoch", f"legacy CSD starts epoch {f.epoch}")
        if f.epoch != self.epoch:
            stale = self.epoch is not None and f.epoch < self.epoch
            if not (stale and "decode_stale_epoch" in self.bugs and f.ftype == w.VIDEO):
                drop("stale_epoch" if stale else "future_epoch",
                     f"frame of epoch {f.epoch}, current {self.epoch}")
                return
        if f.ftype == w.CSD:
            self.tel.write("frame", action="decode", type=kind, epoch=f.epoch, seq=f.seq,
                           key=False, current_epoch=self.epoch)
            self.decoder.apply_csd(f.payload)
            self.csd_applied = True
            self.evaluate()
            return
        if f.ftype == w.AUDIO:
            self.tel.write("frame", action="decode", type=kind, epoch=f.epoch, seq=f.seq,
                           key=False, current_epoch=self.epoch)
            self.decoder.decode_audio(f.payload)
            return
        if self.v.background:
            drop("in_background", "the client is in the background")
            return
        stale_pass = f.epoch != self.epoch
        if not self.csd_applied and not stale_pass:
            drop("no_csd", "no CSD for this epoch yet")
            return
        if not f.key and not self.keyframe_decoded and not stale_pass:
            drop("awaiting_keyframe", "waiting for a keyframe of this epoch")
            return
        self.tel.write("frame", action="decode", type=kind, epoch=f.epoch, seq=f.seq, key=f.key,
                       current_epoch=self.epoch)
        # Decoded off the event loop (below), so that heartbeats and timers keep their time
        # while a large picture decodes on a busy host.
        self.pending = (f, stale_pass, self.decoder)

    async def decode_pending(self) -> None:
        """Run the decode on_media queued, then act on its pictures (in frame order)."""
        if self.pending is None:
            return
        f, stale_pass, decoder = self.pending
        self.pending = None
        try:
            pictures = await self.loop.run_in_executor(self.v.pool, decoder.decode,
                                                       f.payload, f.key)
        except Exception as exc:
            self.tel.write("decode_error", epoch=f.epoch, seq=f.seq, error=str(exc)[:200])
            return
        if self.done.is_set() or decoder is not self.decoder:
            return  # the connection ended (or the decoder went) while it decoded
        self.after_decode(f, stale_pass, pictures)
        self.update_watchdog()

    def after_decode(self, f: w.Frame, stale_pass: bool, pictures: list[av.VideoFrame]) -> None:
        for picture in pictures:
            self.tel.write("decoded", epoch=f.epoch, seq=f.seq, key=f.key)
            if stale_pass:
                self.render(picture, f)
                continue
            if f.key:
                self.keyframe_decoded = True
            if self.keyframe_decoded:
                self.restart_stall()
            self.evaluate()
            if self.state == STREAMING:
                self.render(picture, f)

    def render(self, picture: av.VideoFrame, f: w.Frame) -> None:
        plane = picture.planes[0]
        reading = w.read_marker(bytes(plane), plane.line_size, picture.width, picture.height)
        self.tel.write("rendered", epoch=reading[0] if reading else None,
                       frame=reading[1] if reading else None, stream_epoch=self.epoch,
                       seq=f.seq, audited=True)

    # -- the STREAMING predicate (7.2)
    def predicate(self) -> bool:
        # self.legacy: inference confirmed (version-1 Viewer, PROTO|version=1, or the
        # fallback expired with no STREAM_STATE).
        server_ok = self.server_state == w.S_ACTIVE or self.legacy
        keyframe_ok = self.keyframe_decoded or "streaming_without_keyframe" in self.bugs
        return (self.decoder is not None and not self.v.background and self.csd_applied
                and keyframe_ok and server_ok)

    def evaluate(self) -> None:
        if self.state not in DECODER_STATES:
            return
        holds = self.predicate()
        if holds and self.state in (RECONFIGURING, RECOVERING):
            if self.state == RECOVERING and self.recovery_cause == "client_background" \
                    and self.v.background:
                return
            self.go(STREAMING, "conditions_met", "decoder, CSD, keyframe and server all ready")
        elif not holds and self.state == STREAMING:
            self.keyframe_decoded = False
            if self.v.background:
                self.go(RECOVERING, "client_background", "sent to the background")
                self.recovery_cause = "client_background"
            elif self.decoder is None:
                self.go(RECONFIGURING, "decoder_lost", "no decoder")
            else:
                self.go(RECONFIGURING, "server_state", "the server is not ACTIVE")

    # -- stall watchdog (7.6)
    def armed(self) -> bool:
        server_active = self.server_state == w.S_ACTIVE or self.legacy
        if "recover_while_paused" in self.bugs and self.server_state in (w.S_PAUSED, w.S_STOPPED):
            server_active = True
        return (self.accepted and self.state in (STREAMING, RECONFIGURING) and server_active
                and not self.v.background)

    def restart_stall(self) -> None:
        self.stall_remaining = self.stall_timeout
        if self.stall_deadline is not None:
            self.stall_deadline = None
            self._cancel("stall")
        self.update_watchdog()

    def update_watchdog(self) -> None:
        if self.done.is_set():
            return
        if self.armed():
            if self.stall_deadline is None:
                self.stall_deadline = time.monotonic() + self.stall_remaining
                self._later("stall", self.stall_remaining, self._stalled)
        elif self.stall_deadline is not None:
            self.stall_remaining = max(0.0, self.stall_deadline - time.monotonic())
            self.stall_deadline = None
            self._cancel("stall")

    def _stalled(self) -> None:
        self.stall_deadline = None
        self.timers.pop("stall", None)
        self.stall_remaining = self.stall_timeout
        self.keyframe_decoded = False
        self.go(RECOVERING, "stall", f"no picture for {self.stall_timeout} s")
        self.recovery_cause = "stall"
        self.attempt = 0
        self._request_keyframe()

    def _request_keyframe(self) -> None:
        if self.state != RECOVERING:
            return
        if "recover_while_paused" in self.bugs and self.server_state != w.S_ACTIVE:
            return  # this build sits in RECOVERING under PAUSED, quietly
        if self.attempt > RETRIES:
            self.disconnect("keyframe_retries_exhausted", "keyframe requests went unanswered")
            return
        if self.attempt == 0 or "no_keyframe_retry" not in self.bugs:
            self.send(w.msg("REQ_KEYFRAME", epoch=self.epoch))
            self.tel.write("keyframe_request", epoch=self.epoch, attempt=self.attempt)
        self.attempt += 1
        self._later("retry", RETRY_INTERVAL, self._request_keyframe)

    def _flap(self) -> None:
        if self.state == STREAMING:
            self.keyframe_decoded = False
            self.go(RECOVERING, "stall", "picture looked stuck")
            self.recovery_cause = "stall"
            self.attempt = 0
            self._request_keyframe()

    # -- background (7.12)
    def background(self) -> None:
        self.keyframe_decoded = False
        if self.state == STREAMING or (self.state == RECONFIGURING
                                       and self.server_state == w.S_ACTIVE):
            self.go(RECOVERING, "client_background", "sent to the background")
            self.recovery_cause = "client_background"
        self.update_watchdog()

    def foreground(self) -> None:
        if self.state == RECOVERING and self.recovery_cause == "client_background":
            self.attempt = 0
            self._request_keyframe()
        self.evaluate()
        self.update_watchdog()


class Viewer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.host, _, port = args.connect.rpartition(":")
        self.port = int(port)
        self.secret = args.secret
        self.version = args.protocol_version
        self.bugs = set(args.bug or [])
        self.tel = Telemetry(args.telemetry, args.viewer_id)
        self.attempt = 0
        self.background = False
        self.session: Session | None = None
        self.stopping = asyncio.Event()
        # One decoding thread: the decoder is used by one thread at a time, in frame order.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    def backoff(self) -> float:
        if "no_backoff" in self.bugs:
            return 0.02
        ceiling = min(RECONNECT_MAX, RECONNECT_INITIAL * 2 ** self.attempt)
        self.attempt += 1
        return ceiling * random.uniform(0.5, 1.0)

    async def run(self) -> None:
        self.tel.write("hello", implementation="independent-viewer", version=self.version,
                       decode=True)
        while not self.stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                self.tel.write("connection", action="failed", reason=f"connect failed: {exc}")
                if await self._wait(self.backoff()):
                    return
                continue
            self.session = Session(self, reader, writer)
            cause = await self.session.run()
            if cause in FINAL_CAUSES or self.stopping.is_set():
                log(f"not reconnecting after {cause}")
                await self.stopping.wait()
                return
            if await self._wait(self.backoff()):
                return

    async def _wait(self, delay: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay)
        return self.stopping.is_set()

    def stop(self) -> None:
        if self.session is not None and not self.session.done.is_set():
            self.session.stop()
        self.stopping.set()

    def connected(self) -> bool:
        return self.session is not None and not self.session.done.is_set()

    def status(self) -> dict[str, Any]:
        session = self.session if self.connected() else None
        return {"state": session.state if session else DISCONNECTED,
                "epoch": session.epoch if session else None, "background": self.background}

    async def control(self, method: str, path: str, _body: dict[str, Any]) -> http.Answer:
        """Section 13.3: status, background and foreground, and killing the connection."""
        routes = {"/background": lambda: self.set_background(True),
                  "/foreground": lambda: self.set_background(False),
                  "/kill-connection": self._kill}
        path = path.replace("_", "-")
        if path == "/status":
            return (200, self.status()) if method == "GET" else (405, {"error": "use GET"})
        if path not in routes:
            return 404, {"error": f"no route {path}"}
        if method != "POST":
            return 405, {"error": "use POST"}
        routes[path]()
        return 200, self.status()

    def _kill(self) -> None:
        if not self.connected() or self.session is None:
            raise http.Conflict("no connection to kill")
        self.session.kill()

    def set_background(self, on: bool) -> None:
        self.background = on
        if self.session is not None and not self.session.done.is_set():
            (self.session.background if on else self.session.foreground)()


async def main_async(args: argparse.Namespace) -> int:
    viewer = Viewer(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, viewer.stop)
    loop.add_signal_handler(signal.SIGUSR1, viewer.set_background, True)
    loop.add_signal_handler(signal.SIGUSR2, viewer.set_background, False)
    if args.control:
        host, _, port = args.control.rpartition(":")
        await asyncio.start_server(http.serve(viewer.control, log), host or "127.0.0.1",
                                   int(port))
    await viewer.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", required=True, help="HOST:PORT of the Primary")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--telemetry", help="JSON Lines file to append telemetry to")
    parser.add_argument("--viewer-id", default="independent")
    parser.add_argument("--protocol-version", type=int, choices=(1, 2), default=2)
    parser.add_argument("--control", help="HOST:PORT of the HTTP test-control interface (13.3)")
    parser.add_argument("--bug", action="append", choices=sorted(BUGS),
                        help="plant one rule violation (tests only)")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
