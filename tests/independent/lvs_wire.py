"""Wire format of LVS version 2, written from reference/PROTOCOL.md sections 2-5 alone.

Shared by the independent Viewer and Primary of this folder. Nothing here comes from the
project's own protocol package: this is a second reading of the specification, so that the
harness can be tried against peers it was not built alongside.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import time
from dataclasses import dataclass, field

HEADER = struct.Struct(">2sBBIIQI")
HEADER_SIZE = HEADER.size  # 24
MAGIC = b"LV"

CONTROL, CSD, VIDEO, AUDIO = 1, 2, 3, 4
TYPE_NAMES = {CONTROL: "CONTROL", CSD: "CSD", VIDEO: "VIDEO", AUDIO: "AUDIO"}
FLAG_KEY = 0x01

CONTROL_LIMIT = 4096
MEDIA_LIMIT = 4 * 1024 * 1024

# Stream state codes (PROTOCOL.md 4.5).
S_ACTIVE, S_RECONFIGURING, S_PAUSED, S_STOPPED = 1, 2, 3, 4
STATE_CODE_NAMES = {1: "ACTIVE", 2: "RECONFIGURING", 3: "PAUSED", 4: "STOPPED"}

UINT32_MAX = 0xFFFFFFFF


class ProtocolViolation(Exception):
    """Fatal input (PROTOCOL.md 2.8): the receiver answers ERROR|code=<code> and closes."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def now_us() -> int:
    return int(time.monotonic() * 1_000_000)


def pack(ftype: int, payload: bytes, seq: int, *, flags: int = 0, epoch: int = 0,
         timestamp: int | None = None) -> bytes:
    ts = now_us() if timestamp is None else timestamp
    return HEADER.pack(MAGIC, ftype, flags, epoch, seq & UINT32_MAX, ts, len(payload)) + payload


@dataclass
class Frame:
    ftype: int
    flags: int
    epoch: int
    seq: int
    timestamp: int
    payload: bytes

    @property
    def key(self) -> bool:
        return bool(self.flags & FLAG_KEY)


def check_header(raw: bytes, limits: dict[int, int]) -> tuple[int, int, int, int, int, int]:
    """Validate a 24-byte header in the order of 2.8 (steps 1-4); return its fields."""
    magic, ftype, flags, epoch, seq, ts, length = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtocolViolation("bad_magic", f"frame starts with {magic!r}, expected b'LV'")
    if ftype not in TYPE_NAMES:
        raise ProtocolViolation("bad_frame_type", f"frame type {ftype} is not 1..4")
    if flags & ~FLAG_KEY or (flags and ftype != VIDEO):
        raise ProtocolViolation("bad_flags", f"flags 0x{flags:02x} not allowed on type {ftype}")
    if length > limits[ftype]:
        raise ProtocolViolation(
            "oversize", f"payload of {length} bytes over the {limits[ftype]} limit")
    return ftype, flags, epoch, seq, ts, length


class FrameBuffer:
    """Bytes in, whole frames out; the header is judged before its payload is buffered."""

    def __init__(self, limits: dict[int, int]) -> None:
        self.limits = limits
        self.buf = bytearray()
        self.header: tuple[int, int, int, int, int, int] | None = None
        self.frame_started: float | None = None  # monotonic time of the current frame's first byte

    def feed(self, data: bytes, at: float) -> list[Frame]:
        frames: list[Frame] = []
        if not self.buf and self.header is None and data:
            self.frame_started = at
        self.buf += data
        while True:
            if self.header is None:
                if len(self.buf) < HEADER_SIZE:
                    break
                self.header = check_header(bytes(self.buf[:HEADER_SIZE]), self.limits)
                del self.buf[:HEADER_SIZE]
            ftype, flags, epoch, seq, ts, length = self.header
            if len(self.buf) < length:
                break
            payload = bytes(self.buf[:length])
            del self.buf[:length]
            self.header = None
            frames.append(Frame(ftype, flags, epoch, seq, ts, payload))
            # The next frame's first byte (if any) came in this same read.
            self.frame_started = at if self.buf else None
        return frames

    def discard(self) -> None:
        self.buf.clear()
        self.header = None
        self.frame_started = None


# ---------------------------------------------------------------- control messages (section 3)

NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,31}\Z")
KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_MUST_ESCAPE = {"%", "|", "="} | {chr(c) for c in range(0x20)} | {"\x7f"}


def escape(value: str) -> str:
    return "".join(f"%{ord(ch):02X}" if ch in _MUST_ESCAPE else ch for ch in value)


def unescape(value: str) -> str:
    out = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "%":
            digits = value[i + 1:i + 3]
            if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                near = value[i:i + 3]
                raise ProtocolViolation("bad_message", f"bad percent escape near {near!r}")
            out.append(int(digits, 16))
            i += 3
        else:
            out += ch.encode("utf-8")
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolation("bad_utf8", "an escaped value does not decode as UTF-8") from None


@dataclass
class Message:
    name: str
    positional: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def int_field(self, key: str) -> int | None:
        v = self.fields.get(key)
        return None if v is None else int(v)

    def encode(self) -> bytes:
        parts = [self.name] + [escape(p) for p in self.positional]
        parts += [f"{k}={escape(v)}" for k, v in self.fields.items()]
        return "|".join(parts).encode("utf-8")


def msg(name: str, *positional: object, **fields: object) -> Message:
    return Message(name, [str(p) for p in positional],
                   {k: str(v) for k, v in fields.items() if v is not None})


# Field types per known message (3.5, 4.2-4.4). "!" marks a required field; integer keys are
# positional fields.
KNOWN: dict[str, dict[str | int, str]] = {
    "HELLO": {"client": "str!", "version": "int!"},
    "AUTH": {"response": "str!"},
    "CAPS": {"codecs": "list!", "max_width": "int", "max_height": "int", "hw_decode": "bool",
             "decoder": "str"},
    "SET_STREAM": {"codec": "str!", "width": "int", "height": "int", "fps": "int",
                   "bitrate": "int", "profile": "str"},
    "REQ_KEYFRAME": {"epoch": "int!"},
    "HEARTBEAT": {},
    "BYE": {"reason": "str"},
    "ERROR": {"code": "str!", "reason": "str"},
    "PROTO": {"version": "int!"},
    "AUTH_CHALLENGE": {"nonce": "str!"},
    "AUTH_OK": {},
    "AUTH_FAIL": {"reason": "str!"},
    "SESSION": {"id": "str!"},
    "STREAM_STATE": {0: "state!", "epoch": "int!"},
    "STREAM_EVENT": {0: "str!", "epoch": "int!"},
    "STREAM_ACCEPTED": {"epoch": "int", "codec": "str!", "width": "int", "height": "int",
                        "fps": "int", "bitrate": "int", "profile": "str", "backend": "str"},
    "STREAM_REJECTED": {"reason": "str!", "epoch": "int"},
}

_INT_RE = re.compile(r"[0-9]{1,10}\Z")


def _valid(kind: str, value: str) -> bool:
    if kind in ("int", "state"):
        if not _INT_RE.match(value) or int(value) > UINT32_MAX:
            return False
        return kind == "int" or int(value) in STATE_CODE_NAMES
    if kind == "bool":
        return value in ("0", "1")
    return True  # str, list


def parse(payload: bytes) -> Message:
    """Decode one CONTROL payload (2.8 steps 5-7); raise ProtocolViolation when fatal."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolation("bad_utf8", "control payload is not UTF-8") from None
    if not text:
        raise ProtocolViolation("bad_message", "empty control message")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ProtocolViolation("bad_message", "raw control character in a control message")
    name, *raw_fields = text.split("|")
    if not NAME_RE.match(name):
        raise ProtocolViolation("bad_message", f"bad message name {name[:40]!r}")
    message = Message(name)
    for raw in raw_fields:
        if "=" in raw:
            key, value = raw.split("=", 1)
            if not KEY_RE.match(key):
                raise ProtocolViolation("bad_message", f"bad key {key[:40]!r}")
            if key in message.fields:
                raise ProtocolViolation("bad_message", f"key {key!r} appears twice")
            message.fields[key] = unescape(value)
        else:
            if message.fields:
                raise ProtocolViolation("bad_message", "positional field after a keyed one")
            message.positional.append(unescape(raw))
    schema = KNOWN.get(name)
    if schema is not None:
        for where, kind in schema.items():
            required = kind.endswith("!")
            kind = kind.rstrip("!")
            if isinstance(where, int):
                value = message.positional[where] if where < len(message.positional) else None
            else:
                value = message.fields.get(where)
            if value is None:
                if required:
                    raise ProtocolViolation("bad_field", f"{name} lacks its {where} field")
                continue
            if not _valid(kind, value):
                raise ProtocolViolation("bad_field", f"{name} field {where} is not a valid {kind}")
    return message


# ---------------------------------------------------------------- authentication (section 5)

NONCE_RE = re.compile(r"[0-9a-f]{32}\Z")
RESPONSE_RE = re.compile(r"[0-9a-f]{64}\Z")


def auth_response(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode("utf-8"), ("LVS-AUTH:" + nonce).encode("ascii"),
                    hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- H.264 helpers

def split_nals(annexb: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream, each with a 4-byte start code in front."""
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", annexb)]
    nals = []
    for i, s in enumerate(starts):
        body_start = s + 3
        end = starts[i + 1] if i + 1 < len(starts) else len(annexb)
        # A 4-byte start code leaves a zero at the end of the previous unit.
        if i + 1 < len(starts) and end > 0 and annexb[end - 1] == 0:
            end -= 1
        nals.append(b"\x00\x00\x00\x01" + annexb[body_start:end])
    return nals


def nal_type(nal: bytes) -> int:
    return nal[4] & 0x1F


# ---------------------------------------------------------------- test-pattern marker (9.4)

MARKER_SYNC = 0b10110010
MARKER_COLS, MARKER_ROWS, MARKER_ORIGIN = 16, 5, 16


def marker_cell(width: int, height: int) -> int:
    return 16 * max(1, min(width // 320, height // 180))


def marker_bits(epoch: int, frame_no: int) -> list[int]:
    import binascii

    body = epoch.to_bytes(4, "big") + (frame_no % (1 << 24)).to_bytes(3, "big")
    crc = binascii.crc_hqx(body, 0xFFFF)
    value = (MARKER_SYNC << 72) | (epoch << 40) | ((frame_no % (1 << 24)) << 16) | crc
    return [(value >> (79 - i)) & 1 for i in range(80)]


def read_marker(luma: bytes, stride: int, width: int, height: int) -> tuple[int, int] | None:
    """(epoch, frame number) read back from a picture's luma plane, or None if unreadable."""
    import binascii

    cell = marker_cell(width, height)
    if MARKER_ORIGIN + MARKER_COLS * cell > width or MARKER_ORIGIN + MARKER_ROWS * cell > height:
        return None
    q = cell // 4
    means = []
    for r in range(MARKER_ROWS):
        for c in range(MARKER_COLS):
            x0 = MARKER_ORIGIN + c * cell + q
            y0 = MARKER_ORIGIN + r * cell + q
            total = 0
            for y in range(y0, y0 + 2 * q):
                row = luma[y * stride + x0:y * stride + x0 + 2 * q]
                total += sum(row)
            means.append(total / (4 * q * q))
    sync = [(MARKER_SYNC >> (7 - i)) & 1 for i in range(8)]
    whites = [m for m, b in zip(means[:8], sync, strict=True) if b]
    blacks = [m for m, b in zip(means[:8], sync, strict=True) if not b]
    white, black = sum(whites) / len(whites), sum(blacks) / len(blacks)
    if white - black < 80:
        return None
    mid = (white + black) / 2
    margin = (white - black) / 4
    bits = []
    for m in means:
        if abs(m - mid) < margin:
            return None  # neither black nor white
        bits.append(1 if m > mid else 0)
    value = 0
    for b in bits:
        value = (value << 1) | b
    if value >> 72 != MARKER_SYNC:
        return None
    epoch = (value >> 40) & UINT32_MAX
    frame_no = (value >> 16) & 0xFFFFFF
    body = epoch.to_bytes(4, "big") + frame_no.to_bytes(3, "big")
    if binascii.crc_hqx(body, 0xFFFF) != value & 0xFFFF:
        return None
    return epoch, frame_no
