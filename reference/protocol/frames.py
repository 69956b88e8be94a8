"""Frame codec: bytes to `Frame` objects and back, nothing else.

Header layout (PROTOCOL.md, "Frame header"), all integers big-endian:

    offset size field
    0      2    magic      b"LV"
    2      1    type       FrameType
    3      1    flags      FrameFlags
    4      4    epoch      uint32
    8      4    sequence   uint32
    12     8    timestamp  uint64, microseconds
    20     4    length     uint32, payload bytes that follow

The decoder is incremental: feed it any chunking of the stream and it hands
out whole frames. The payload length is checked against the limit *before*
any payload buffer is grown (FRAME-1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from reference.protocol.errors import ErrorCode, RemoteProtocolError

MAGIC = b"LV"
DEFAULT_PORT = 7450  # TCP port a Primary listens on unless told otherwise
HEADER = struct.Struct(">2sBBIIQI")
HEADER_SIZE = HEADER.size  # 24
DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024
MAX_CONTROL_PAYLOAD = 4096
UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF


class FrameType(IntEnum):
    CONTROL = 1
    CSD = 2
    VIDEO = 3
    AUDIO = 4


MEDIA_TYPES = frozenset({FrameType.CSD, FrameType.VIDEO, FrameType.AUDIO})


class FrameFlags(IntFlag):
    NONE = 0
    KEYFRAME = 0x01  # VIDEO only: an IDR picture, decodable on its own


KNOWN_FLAGS = int(FrameFlags.KEYFRAME)


@dataclass(frozen=True, slots=True)
class Frame:
    type: FrameType
    payload: bytes
    epoch: int = 0
    sequence: int = 0
    timestamp_us: int = 0
    flags: FrameFlags = FrameFlags.NONE

    @property
    def is_keyframe(self) -> bool:
        return self.type is FrameType.VIDEO and bool(self.flags & FrameFlags.KEYFRAME)

    @property
    def is_media(self) -> bool:
        return self.type in MEDIA_TYPES


def encode_header(
    frame_type: int, flags: int, epoch: int, sequence: int, timestamp_us: int, length: int
) -> bytes:
    """Pack a header without validation: the bad-input suite needs malformed ones too."""
    return HEADER.pack(MAGIC, frame_type, flags, epoch, sequence, timestamp_us, length)


def encode_frame(frame: Frame, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Serialize a valid frame; raises ValueError on a frame that could not be decoded."""
    limit = MAX_CONTROL_PAYLOAD if frame.type is FrameType.CONTROL else max_payload
    if len(frame.payload) > limit:
        raise ValueError(f"{frame.type.name} payload of {len(frame.payload)} bytes > {limit}")
    if int(frame.flags) & ~KNOWN_FLAGS or (frame.flags and frame.type is not FrameType.VIDEO):
        raise ValueError(f"flags {int(frame.flags):#04x} not valid on a {frame.type.name} frame")
    for name, value, top in (
        ("epoch", frame.epoch, UINT32_MAX),
        ("sequence", frame.sequence, UINT32_MAX),
        ("timestamp_us", frame.timestamp_us, UINT64_MAX),
    ):
        if not 0 <= value <= top:
            raise ValueError(f"{name} {value} out of range")
    return pack_frame(frame)


def pack_frame(frame: Frame) -> bytes:
    """Header + payload with no validation: for bytes that were decoded (or built) already."""
    return (
        encode_header(
            frame.type,
            frame.flags,
            frame.epoch,
            frame.sequence,
            frame.timestamp_us,
            len(frame.payload),
        )
        + frame.payload
    )


@dataclass(frozen=True, slots=True)
class FrameHeader:
    type: FrameType
    flags: FrameFlags
    epoch: int
    sequence: int
    timestamp_us: int
    length: int


def parse_header(data: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> FrameHeader:
    """Validate one 24-byte header; raises RemoteProtocolError, never anything else."""
    if len(data) != HEADER_SIZE:
        raise RemoteProtocolError(
            ErrorCode.BAD_MESSAGE, f"header needs {HEADER_SIZE} bytes, got {len(data)}"
        )
    magic, type_, flags, epoch, sequence, timestamp_us, length = HEADER.unpack(data)
    if magic != MAGIC:
        raise RemoteProtocolError(ErrorCode.BAD_MAGIC, f"bad magic {magic!r}, expected {MAGIC!r}")
    try:
        frame_type = FrameType(type_)
    except ValueError:
        raise RemoteProtocolError(
            ErrorCode.BAD_FRAME_TYPE, f"unknown frame type {type_:#04x}"
        ) from None
    if flags & ~KNOWN_FLAGS or (flags and frame_type is not FrameType.VIDEO):
        raise RemoteProtocolError(
            ErrorCode.BAD_FLAGS, f"flags {flags:#04x} not valid on a {frame_type.name} frame"
        )
    limit = MAX_CONTROL_PAYLOAD if frame_type is FrameType.CONTROL else max_payload
    if length > limit:
        raise RemoteProtocolError(
            ErrorCode.OVERSIZE,
            f"{frame_type.name} payload length {length} exceeds the limit of {limit} bytes",
        )
    return FrameHeader(frame_type, FrameFlags(flags), epoch, sequence, timestamp_us, length)


class FrameDecoder:
    """Incremental decoder. `feed()` bytes, then iterate `frames()`.

    After a RemoteProtocolError the decoder is poisoned: the stream has lost
    framing and nothing after the bad header can be trusted.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._header: FrameHeader | None = None
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def mid_frame(self) -> bool:
        """Part of a frame has arrived and the rest has not (the frame deadline of FRAME-2 runs)."""
        return self._header is not None or bool(self._buffer)

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._header is None and len(self._buffer) < HEADER_SIZE <= len(self._buffer) + len(
            data
        ):
            # Judge the header before taking the rest of the read: an oversize or
            # malformed one must not cost a buffer the size of the read (FRAME-1).
            # The error is kept for next_frame(), which raises it as before.
            need = HEADER_SIZE - len(self._buffer)
            self._buffer += data[:need]
            data = data[need:]
            try:
                self._parse_header()
            except RemoteProtocolError:
                return
        self._buffer += data

    def _parse_header(self) -> None:
        try:
            self._header = parse_header(bytes(self._buffer[:HEADER_SIZE]), self.max_payload)
        except RemoteProtocolError as exc:
            self._error = exc
            self._buffer.clear()  # framing is lost: nothing buffered can be used
            raise
        del self._buffer[:HEADER_SIZE]

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None when more bytes are needed."""
        if self._error is not None:
            raise self._error
        if self._header is None:
            if len(self._buffer) < HEADER_SIZE:
                return None
            self._parse_header()
        header = self._header
        assert header is not None
        if len(self._buffer) < header.length:
            return None
        payload = bytes(self._buffer[: header.length])
        del self._buffer[: header.length]
        self._header = None
        return Frame(
            type=header.type,
            payload=payload,
            epoch=header.epoch,
            sequence=header.sequence,
            timestamp_us=header.timestamp_us,
            flags=header.flags,
        )

    def frames(self) -> list[Frame]:
        out: list[Frame] = []
        while (frame := self.next_frame()) is not None:
            out.append(frame)
        return out
