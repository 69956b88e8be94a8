"""An independent LVS version-2 Primary, written from reference/PROTOCOL.md alone.

It encodes a synthetic test pattern (with the render-audit marker of PROTOCOL.md 9.4) to
H.264 with PyAV and serves it to any number of Viewers. `--control HOST:PORT` opens a small
HTTP interface for a test driver: reconfigure, restart the encoder, pause, resume, stop,
start, and report the stream state. `--bug NAME` plants one rule violation (README.md).

    python tests/independent/lvs_primary.py --listen 127.0.0.1:7450 --secret s3cret
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import os
import secrets
import signal
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lvs_http as http
import lvs_wire as w

BUGS = {
    "active_before_key_on_resume": "KEY-1",
    "accept_wrong_hmac": "AUTH-2",
    "state_as_event": "STATE-8 (spec-gaps; no ID on main)",
    "delta_before_key": "KEY-4 (spec-gaps; no ID on main)",
    "media_before_accept": "NEG-1",
    "reused_nonce": "AUTH-1",
    "no_proto": "VER-2",
    "restart_keeps_epoch": "EPOCH-1",
    "slow_heartbeat": "HB-1",
    "error_on_unknown": "VER-3",
    "silent_reject": "NEG-3",
    "late_join_no_key": "KEY-3",
    "no_auth_timeout": "AUTH-3",
    "ignore_keyframe_request": "KEY-2",
    "act_before_auth": "AUTH-4",
    "state_to_v1": "LEGACY-2",
    "snapshot_after_accept": "SNAP-1",
}

HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TIMEOUT = 6.0
AUTH_TIMEOUT = 5.0
FRAME_TIMEOUT = 10.0
KEYFRAME_ANSWER = 1.0
JOIN_KEY_SPACING = 0.3
SEND_BACKLOG_LIMIT = 2 * 1024 * 1024
RECEIVE_LIMITS = {t: w.CONTROL_LIMIT for t in w.TYPE_NAMES}  # 2.7: a Viewer sends only CONTROL

# Per-connection states of 7.10.
AWAIT_HELLO, CHALLENGED, AUTHENTICATED, ACCEPTED, CLOSED = (
    "await-hello", "challenged", "authenticated", "accepted", "closed")


def log(text: str) -> None:
    print(f"[{time.monotonic():.3f}] primary: {text}", file=sys.stderr, flush=True)


class Encoder:
    """One H.264 encoder for one epoch, fed a synthetic moving picture with the audit marker."""

    def __init__(self, epoch: int, width: int, height: int, fps: int, bitrate: int,
                 gop: int, noise: bool = False) -> None:
        self.epoch, self.width, self.height, self.fps = epoch, width, height, fps
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.bit_rate = bitrate
        ctx.gop_size = gop
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                       "x264-params": "scenecut=0:forced-idr=1:repeat-headers=1:threads=1"}
        ctx.open()
        self.ctx = ctx
        self.frame_no = 0
        self.noise = noise  # fresh noise in the lower half: frames as large as the bitrate
        self.cell = w.marker_cell(width, height)
        # A diagonal gradient as the background; a bright bar moves across it.
        self.base = bytearray(((x + y) * 2) % 200 + 30 for y in range(height) for x in range(width))

    def _picture(self) -> av.VideoFrame:
        luma = bytearray(self.base)
        bar = (self.frame_no * 4) % self.width
        for y in range(self.height // 2, self.height):
            row = y * self.width
            luma[row + bar:row + min(self.width, bar + 8)] = b"\xf0" * min(8, self.width - bar)
        if self.noise:
            half = (self.height // 2) * self.width
            luma[half:] = os.urandom(len(luma) - half)
        for i, bit in enumerate(w.marker_bits(self.epoch, self.frame_no)):
            r, c = divmod(i, w.MARKER_COLS)
            x0 = w.MARKER_ORIGIN + c * self.cell
            y0 = w.MARKER_ORIGIN + r * self.cell
            value = bytes([235 if bit else 16]) * self.cell
            for y in range(y0, y0 + self.cell):
                luma[y * self.width + x0:y * self.width + x0 + self.cell] = value
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y_plane = frame.planes[0]
        stride = y_plane.line_size
        if stride == self.width:
            y_plane.update(bytes(luma))
        else:
            padded = bytearray(stride * self.height)
            for y in range(self.height):
                row = luma[y * self.width:(y + 1) * self.width]
                padded[y * stride:y * stride + self.width] = row
            y_plane.update(bytes(padded))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        return frame

    def encode(self, force_key: bool) -> tuple[bytes, bytes, bool, int] | None:
        """(csd, access unit without SPS/PPS, is keyframe, pts in us) for the next picture."""
        frame = self._picture()
        frame.pts = self.frame_no
        if force_key:
            frame.pict_type = av.video.frame.PictureType.I
        self.frame_no += 1
        packets = self.ctx.encode(frame)
        if not packets:
            return None
        data = b"".join(bytes(p) for p in packets)
        nals = w.split_nals(data)
        csd = b"".join(n for n in nals if w.nal_type(n) in (7, 8))
        au = b"".join(n for n in nals if w.nal_type(n) not in (7, 8))
        key = any(w.nal_type(n) == 5 for n in nals)
        return csd, au, key, int(time.monotonic() * 1_000_000)


class Connection:
    def __init__(self, primary: Primary, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, number: int) -> None:
        self.p = primary
        self.reader, self.writer = reader, writer
        self.number = number
        self.state = AWAIT_HELLO
        self.version = 2
        self.nonce: str | None = None
        self.seq = 0
        self.session = f"ind-{number}-{secrets.token_hex(3)}"
        self.caps: w.Message | None = None
        self.has_key = False  # received a keyframe of the current epoch
        self.timers: list[asyncio.TimerHandle] = []
        self.hb_handle: asyncio.TimerHandle | None = None
        self.opened = time.monotonic()

    # -- sending
    def send_raw(self, ftype: int, payload: bytes, *, flags: int = 0, epoch: int = 0,
                 timestamp: int | None = None) -> None:
        if self.state == CLOSED or self.writer.is_closing():
            return
        self.writer.write(w.pack(ftype, payload, self.seq, flags=flags, epoch=epoch,
                                 timestamp=timestamp))
        self.seq = (self.seq + 1) & w.UINT32_MAX

    def send(self, message: w.Message) -> None:
        self.send_raw(w.CONTROL, message.encode())

    def backlog(self) -> int:
        transport = self.writer.transport
        return transport.get_write_buffer_size() if transport else 0

    def close(self, why: str) -> None:
        if self.state == CLOSED:
            return
        log(f"connection {self.number} closing: {why}")
        self.state = CLOSED
        for handle in self.timers:
            handle.cancel()
        if self.hb_handle:
            self.hb_handle.cancel()
        self.p.connections.discard(self)
        with contextlib.suppress(Exception):
            self.writer.close()

    def fail(self, code: str, reason: str) -> None:
        self.send(w.msg("ERROR", code=code, reason=reason[:200]))
        self.close(f"sent ERROR {code}")

    # -- receiving
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(self.p.auth_timeout, self._auth_expired))
        frames = w.FrameBuffer(RECEIVE_LIMITS)
        last_rx = time.monotonic()
        try:
            while self.state != CLOSED:
                now = time.monotonic()
                deadline = last_rx + HEARTBEAT_TIMEOUT
                frame_deadline = (frames.frame_started + FRAME_TIMEOUT
                                  if frames.frame_started is not None else None)
                if frame_deadline is not None:
                    deadline = min(deadline, frame_deadline)
                try:
                    data = await asyncio.wait_for(self.reader.read(16384), max(0.0, deadline - now))
                except TimeoutError:
                    now = time.monotonic()
                    if frame_deadline is not None and now >= frame_deadline:
                        self.fail("timeout", "a frame did not complete within the frame deadline")
                    else:
                        self.close("nothing heard for the heartbeat timeout")
                    return
                if not data:
                    self.close("peer closed the socket")
                    return
                last_rx = time.monotonic()
                try:
                    for frame in frames.feed(data, last_rx):
                        self.on_frame(frame)
                        if self.state == CLOSED:
                            return
                except w.ProtocolViolation as bad:
                    frames.discard()
                    self.fail(bad.code, bad.reason)
                    return
        except (ConnectionError, OSError) as exc:
            self.close(f"socket error {exc}")
        finally:
            self.close("handler ended")

    def _auth_expired(self) -> None:
        if self.state in (AWAIT_HELLO, CHALLENGED) and "no_auth_timeout" not in self.p.bugs:
            self.fail("timeout", "not authenticated in time")

    def on_frame(self, frame: w.Frame) -> None:
        if frame.ftype != w.CONTROL:
            raise w.ProtocolViolation("unexpected", "a Viewer may send only CONTROL frames")
        message = w.parse(frame.payload)
        if message.name == "HELLO" and message.int_field("version") == 0:
            raise w.ProtocolViolation("version", "HELLO with version 0")
        handler = getattr(self, f"on_{message.name.lower()}", None)
        if message.name not in w.KNOWN:
            if "error_on_unknown" in self.p.bugs:
                self.fail("bad_message", f"do not know {message.name}")
            return  # VER-3
        if handler is not None:
            handler(message)

    def on_bye(self, _m: w.Message) -> None:
        self.close("Viewer said BYE")

    def on_error(self, m: w.Message) -> None:
        self.close(f"Viewer sent ERROR {m.fields.get('code')}")

    def on_hello(self, m: w.Message) -> None:
        if self.state != AWAIT_HELLO:
            return
        self.version = min(int(m.fields["version"]), self.p.max_version)
        if self.version >= 2 and "no_proto" not in self.p.bugs:
            self.send(w.msg("PROTO", version=self.version))
        self.nonce = self.p.new_nonce()
        self.send(w.msg("AUTH_CHALLENGE", nonce=self.nonce))
        self.state = CHALLENGED

    def on_auth(self, m: w.Message) -> None:
        if self.state == AWAIT_HELLO:
            self.send(w.msg("AUTH_FAIL", reason="no_challenge"))
            self.close("AUTH before any challenge")
            return
        if self.state != CHALLENGED or self.nonce is None:
            return
        nonce, self.nonce = self.nonce, None  # consumed by this AUTH, right or wrong (AUTH-5)
        expected = w.auth_response(self.p.secret, nonce)
        answer = m.fields["response"]
        right = bool(w.RESPONSE_RE.match(answer)) and hmac.compare_digest(expected, answer)
        if not right and "accept_wrong_hmac" not in self.p.bugs:
            self.send(w.msg("AUTH_FAIL", reason="bad_response"))
            self.close("wrong AUTH answer")
            return
        self.send(w.msg("AUTH_OK"))
        self.state = AUTHENTICATED
        self.send(w.msg("SESSION", id=self.session))
        if self.version >= 2 and "snapshot_after_accept" not in self.p.bugs:
            self.send(w.msg("STREAM_STATE", self.p.state, epoch=self.p.epoch))
        self._schedule_heartbeat()
        self.p.connections.add(self)
        last = self.p.last_key
        if "media_before_accept" in self.p.bugs and last is not None:
            epoch, csd, au, pts = last  # this build serves the picture before any SET_STREAM
            self.send_raw(w.CSD, csd, epoch=epoch, timestamp=pts)
            self.send_raw(w.VIDEO, au, flags=w.FLAG_KEY, epoch=epoch, timestamp=pts)
            self.has_key = True

    def _schedule_heartbeat(self) -> None:
        interval = HEARTBEAT_INTERVAL * (1.6 if "slow_heartbeat" in self.p.bugs else 1.0)
        self.hb_handle = asyncio.get_running_loop().call_later(interval, self._heartbeat)

    def _heartbeat(self) -> None:
        if self.state in (AUTHENTICATED, ACCEPTED):
            self.send(w.msg("HEARTBEAT"))
            self._schedule_heartbeat()

    def on_caps(self, m: w.Message) -> None:
        if self.state in (AUTHENTICATED, ACCEPTED):
            self.caps = m

    def on_set_stream(self, m: w.Message) -> None:
        early = "act_before_auth" in self.p.bugs and self.state in (AWAIT_HELLO, CHALLENGED)
        if self.state != AUTHENTICATED and not early:
            return  # before AUTH_OK, or a second request after STREAM_ACCEPTED: not acted on
        p = self.p
        problem = None
        if m.fields["codec"].lower() != "h264":
            problem = f"only h264 is offered, not {m.fields['codec']}"
        elif self.caps is not None:
            codecs = [c for c in self.caps.fields.get("codecs", "").split(",") if c]
            max_w, max_h = self.caps.int_field("max_width"), self.caps.int_field("max_height")
            if "h264" not in [c.lower() for c in codecs]:
                problem = "the Viewer's CAPS do not list h264"
            elif (max_w is not None and p.width > max_w) or (
                    max_h is not None and p.height > max_h):
                problem = f"the stream is {p.width}x{p.height}, above the Viewer's limit"
        if problem is not None:
            if "silent_reject" not in p.bugs:
                self.send(w.msg("STREAM_REJECTED", reason=problem, epoch=p.epoch))
            return
        self.send(w.msg("STREAM_ACCEPTED", epoch=p.epoch, codec="h264", width=p.width,
                        height=p.height, fps=p.fps, bitrate=p.bitrate, profile="baseline",
                        backend="libx264"))
        if "snapshot_after_accept" in p.bugs and self.version >= 2 and self.state == AUTHENTICATED:
            self.send(w.msg("STREAM_STATE", p.state, epoch=p.epoch))
        self.state = ACCEPTED
        self.has_key = False
        if p.state == w.S_ACTIVE and "late_join_no_key" not in p.bugs:
            p.want_key = True  # KEY-3: a joiner gets CSD and a keyframe within 1 s

    def on_req_keyframe(self, m: w.Message) -> None:
        if self.state != ACCEPTED or int(m.fields["epoch"]) != self.p.epoch:
            return  # an older epoch (EPOCH-4) or one not started yet
        if "ignore_keyframe_request" in self.p.bugs:
            return
        self.p.keyframe_requested()


class Primary:
    def __init__(self, args: argparse.Namespace) -> None:
        self.secret = args.secret
        self.width, self.height = args.width, args.height
        self.fps, self.bitrate = args.fps, args.bitrate
        self.gop = args.gop or args.fps * 4
        self.noise = args.pattern == "noise"
        self.max_version = self.configured_version = args.protocol_version
        self.bugs = set(args.bug or [])
        self.auth_timeout = AUTH_TIMEOUT
        self.connections: set[Connection] = set()
        self.count = 0
        self.state = w.S_STOPPED
        self.epoch = 0
        self.encoder: Encoder | None = None
        self.want_key = False
        self.last_forced = 0.0
        self.resuming = False
        self.key_deadline: float | None = None  # a REQ_KEYFRAME awaits its keyframe until then
        self.fixed_nonce = secrets.token_hex(16)
        self.last_key: tuple[int, bytes, bytes, int] | None = None  # the latest keyframe sent
        self.stopped = asyncio.Event()

    def new_nonce(self) -> str:
        if "reused_nonce" in self.bugs:
            return self.fixed_nonce
        return secrets.token_hex(16)

    # -- stream state (7.11)
    def _broadcast_state(self, event: str) -> None:
        for conn in list(self.connections):
            if conn.version < 2 and "state_to_v1" not in self.bugs:
                continue  # LEGACY-2: version-1 Viewers get no STREAM_STATE / STREAM_EVENT
            if "state_as_event" in self.bugs:
                conn.send(w.msg("STREAM_EVENT", event, epoch=self.epoch))
                continue
            conn.send(w.msg("STREAM_STATE", self.state, epoch=self.epoch))
            conn.send(w.msg("STREAM_EVENT", event, epoch=self.epoch))

    def _set_state(self, state: int, event: str) -> None:
        self.state = state
        log(f"stream {w.STATE_CODE_NAMES[state]} epoch {self.epoch} ({event})")
        self._broadcast_state(event)

    def start_new_epoch(self, event: str, settle: float = 0.0, keep_epoch: bool = False) -> None:
        """Enter RECONFIGURING with a new epoch (EPOCH-1); its encoder starts after `settle`."""
        if not keep_epoch:
            self.epoch += 1
        self.encoder = None
        self.want_key = True
        self.resuming = False
        self.key_deadline = None
        for conn in self.connections:
            conn.has_key = False
        self._set_state(w.S_RECONFIGURING, event)
        if settle > 0:
            asyncio.get_running_loop().call_later(settle, self._start_encoder, self.epoch)
        else:
            self._start_encoder(self.epoch)

    def _start_encoder(self, epoch: int) -> None:
        if epoch != self.epoch or self.state == w.S_STOPPED or self.encoder is not None:
            return  # a later epoch, or a stop, came first
        self.encoder = Encoder(self.epoch, self.width, self.height, self.fps, self.bitrate,
                               self.gop, self.noise)
        self.want_key = True

    def reconfigure(self, settings: dict[str, Any], settle: float = 0.0) -> None:
        for name in ("width", "height", "fps", "bitrate"):
            if name in settings:
                setattr(self, name, int(settings[name]))
        self.start_new_epoch("RECONFIG_STARTED", settle)

    def restart_encoder(self, settle: float = 0.0) -> None:
        self.start_new_epoch("ENCODER_RESTARTED", settle,
                             keep_epoch="restart_keeps_epoch" in self.bugs)

    def pause(self) -> None:
        if self.state in (w.S_ACTIVE, w.S_RECONFIGURING):
            self._set_state(w.S_PAUSED, "PAUSED")

    def resume(self) -> None:
        if self.state != w.S_PAUSED:
            return
        if "active_before_key_on_resume" in self.bugs:
            self._set_state(w.S_ACTIVE, "RESUMED")
        self.resuming = True  # ACTIVE follows the keyframe (KEY-1)
        self.want_key = True
        for conn in self.connections:
            conn.has_key = False

    def stop(self) -> None:
        if self.state != w.S_STOPPED:
            self.encoder = None
            self.resuming = False
            self._set_state(w.S_STOPPED, "STOPPED")

    def start(self) -> None:
        if self.state == w.S_STOPPED:
            self.start_new_epoch("RECONFIG_STARTED")

    def keyframe_requested(self) -> None:
        if self.state != w.S_ACTIVE or self.resuming:
            return  # only while ACTIVE (PROTOCOL.md 14); the next ACTIVE follows a keyframe
        self.want_key = True
        if self.key_deadline is None:
            self.key_deadline = time.monotonic() + KEYFRAME_ANSWER

    # -- media
    def _producing(self) -> bool:
        return self.encoder is not None and (
            self.state in (w.S_ACTIVE, w.S_RECONFIGURING) or self.resuming)

    def _tick(self) -> None:
        now = time.monotonic()
        if self.key_deadline is not None and now > self.key_deadline:
            log("no keyframe in time for a request: restarting the encoder (KEY-2)")
            self.restart_encoder()
            return
        if not self._producing():
            return
        assert self.encoder is not None
        # A forced keyframe for a joiner comes no sooner than JOIN_KEY_SPACING after the last
        # one; a new epoch, a resume and a REQ_KEYFRAME get theirs at the next tick.
        force = self.want_key and (self.state != w.S_ACTIVE or self.resuming
                                   or self.key_deadline is not None
                                   or now - self.last_forced >= JOIN_KEY_SPACING)
        out = self.encoder.encode(force)
        if force:
            self.want_key = False
            self.last_forced = now
        if out is None:
            return
        csd, au, key, pts = out
        epoch = self.epoch
        receivers = [c for c in self.connections if c.state == ACCEPTED
                     or ("media_before_accept" in self.bugs and c.state == AUTHENTICATED)]
        if key:
            self.key_deadline = None
            self.last_key = (epoch, csd, au, pts)
            for conn in receivers:
                if conn.backlog() > SEND_BACKLOG_LIMIT:
                    conn.has_key = False
                    self.want_key = True
                    continue
                conn.send_raw(w.CSD, csd, epoch=epoch, timestamp=pts)
                conn.send_raw(w.VIDEO, au, flags=w.FLAG_KEY, epoch=epoch, timestamp=pts)
                conn.has_key = True
            if self.state == w.S_RECONFIGURING:
                self._set_state(w.S_ACTIVE, "RECONFIG_DONE")
            elif self.resuming:
                self.resuming = False
                if self.state != w.S_ACTIVE:
                    self._set_state(w.S_ACTIVE, "RESUMED")
            return
        if self.state != w.S_ACTIVE:
            return  # non-keyframes only while ACTIVE
        for conn in receivers:
            if not conn.has_key and "delta_before_key" not in self.bugs:
                continue
            if conn.backlog() > SEND_BACKLOG_LIMIT:
                conn.has_key = False  # skipped: resynchronise with the next keyframe
                self.want_key = True
                continue
            conn.send_raw(w.VIDEO, au, epoch=epoch, timestamp=pts)

    async def media_loop(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        while not self.stopped.is_set():
            try:
                self._tick()
            except Exception as exc:  # an encoder failure must not end the Primary
                log(f"media tick failed: {exc!r}")
            period = 1.0 / self.fps
            next_at = max(next_at + period, time.monotonic())
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def serve_viewer(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        self.count += 1
        conn = Connection(self, reader, writer, self.count)
        log(f"connection {self.count} from {writer.get_extra_info('peername')}")
        try:
            await conn.run()
        except Exception as exc:  # a bug of ours: tell the Viewer, keep serving the others
            log(f"connection {conn.number} handler raised {exc!r}")
            with contextlib.suppress(Exception):
                conn.fail("internal", f"the Primary failed: {exc!r}"[:200])

    # -- the test-control interface (PROTOCOL.md 13.2)
    def status(self) -> dict[str, Any]:
        return {"state": w.STATE_CODE_NAMES[self.state], "epoch": self.epoch,
                "state_code": self.state, "width": self.width, "height": self.height,
                "fps": self.fps, "bitrate": self.bitrate, "version": self.max_version,
                "viewers": sum(1 for c in self.connections if c.state == ACCEPTED)}

    async def control(self, method: str, path: str, body: dict[str, Any]) -> http.Answer:
        path = path.replace("_", "-")
        if path in ("/status", "/state"):
            return (200, self.status()) if method == "GET" else (405, {"error": "use GET"})
        route = getattr(self, "_route_" + path.strip("/").replace("-", "_"), None)
        if route is None or path.count("/") != 1:
            return 404, {"error": f"no route {path}"}
        if method != "POST":
            return 405, {"error": "use POST"}
        result: dict[str, Any] = await route(body)
        return 200, result

    async def _route_reconfigure(self, body: dict[str, Any]) -> dict[str, Any]:
        http.check_fields(body, {"width": int, "height": int, "bitrate": int, "fps": int,
                                 "settle": (int, float)})
        if any(body.get(k, 1) <= 0 for k in ("width", "height", "bitrate", "fps")):
            raise http.BadRequest("width, height, bitrate and fps must be positive")
        self.reconfigure(body, float(body.get("settle", 0)))
        return {"epoch": self.epoch}

    async def _route_restart_encoder(self, body: dict[str, Any]) -> dict[str, Any]:
        http.check_fields(body, {"settle": (int, float)})
        self.restart_encoder(float(body.get("settle", 0)))
        return {"epoch": self.epoch}

    async def _route_pause(self, _body: dict[str, Any]) -> dict[str, Any]:
        if self.state not in (w.S_ACTIVE, w.S_RECONFIGURING):
            raise http.Conflict(f"cannot pause a {w.STATE_CODE_NAMES[self.state]} stream")
        self.pause()
        return self.status()

    async def _route_resume(self, _body: dict[str, Any]) -> dict[str, Any]:
        if self.state != w.S_PAUSED or self.resuming:
            raise http.Conflict(f"cannot resume a {w.STATE_CODE_NAMES[self.state]} stream")
        self.resume()
        return self.status()

    async def _route_stop(self, _body: dict[str, Any]) -> dict[str, Any]:
        if self.state == w.S_STOPPED:
            raise http.Conflict("the stream is already STOPPED")
        self.stop()
        return self.status()

    async def _route_start(self, _body: dict[str, Any]) -> dict[str, Any]:
        if self.state != w.S_STOPPED:
            raise http.Conflict(f"the stream is {w.STATE_CODE_NAMES[self.state]}, not STOPPED")
        self.start()
        deadline = time.monotonic() + 5.0  # 13.2: answer once ACTIVE, or after 5 s
        while self.state != w.S_ACTIVE and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.status()

    async def _route_legacy(self, body: dict[str, Any]) -> dict[str, Any]:
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise http.BadRequest("enabled must be true or false")
        self.max_version = 1 if enabled else self.configured_version
        return self.status()


def hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def main_async(args: argparse.Namespace) -> int:
    primary = Primary(args)
    host, port = hostport(args.listen)
    server = await asyncio.start_server(primary.serve_viewer, host, port, backlog=1024)
    log(f"listening on {host}:{server.sockets[0].getsockname()[1]} bugs={sorted(primary.bugs)}")
    control = None
    if args.control:
        chost, cport = hostport(args.control)
        control = await asyncio.start_server(http.serve(primary.control, log), chost, cport)
        log(f"control interface on http://{chost}:{control.sockets[0].getsockname()[1]}")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, primary.stopped.set)
    if not args.no_autostart:
        primary.start()
    media = asyncio.create_task(primary.media_loop())
    await primary.stopped.wait()
    log("stopping: BYE to every Viewer")
    for conn in list(primary.connections):
        conn.send(w.msg("BYE", reason="primary stopping"))
        conn.close("stopping")
    media.cancel()
    server.close()
    if control:
        control.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:7450")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=800_000)
    parser.add_argument("--gop", type=int, help="frames between periodic keyframes (default 4 s)")
    parser.add_argument("--pattern", choices=("flat", "noise"), default="flat",
                        help="flat: small frames; noise: frames that fill the bitrate")
    parser.add_argument("--protocol-version", type=int, choices=(1, 2), default=2,
                        help="highest version spoken (1: a legacy Primary)")
    parser.add_argument("--control", help="HOST:PORT of the HTTP test-control interface")
    parser.add_argument("--no-autostart", action="store_true", help="stay STOPPED until /start")
    parser.add_argument("--bug", action="append", choices=sorted(BUGS),
                        help="plant one rule violation (tests only)")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
