"""The LVS frame header as a scapy layer, for building and dissecting frames.

`LVS.fields_desc` is the header table of `reference.protocol.frames`, field by
field, in wire order and with the same names; everything else (limits, which
flags are legal, how a stream is framed) is still decided by that module.
Valid frames built here are byte-identical to `encode_frame`; the layer also
builds the malformed frames `encode_frame` refuses to, for the bad-input suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scapy.fields import ByteEnumField, FlagsField, IntField, LongField, StrField, StrFixedLenField
from scapy.layers.inet import TCP
from scapy.packet import Packet, Raw, bind_layers

from reference.protocol.errors import ErrorCode
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PORT,
    HEADER_SIZE,
    MAGIC,
    MAX_CONTROL_PAYLOAD,
    UINT32_MAX,
    Frame,
    FrameFlags,
    FrameType,
)

_LENGTH_OFFSET = HEADER_SIZE - 4  # `length` is the header's last field, a uint32


class LVSControl(Packet):
    """A CONTROL frame's payload: one protocol message as UTF-8 text."""

    name = "LVS control message"
    # Bytes, not str: the bad-input suite sends text that is not valid UTF-8.
    fields_desc = [StrField("text", b"")]


class LVS(Packet):
    """One frame: the 24-byte header, then a `LVSControl` or `Raw` payload."""

    name = "LVS"
    fields_desc = [
        StrFixedLenField("magic", MAGIC, length=len(MAGIC)),
        ByteEnumField("type", int(FrameType.CONTROL), {int(t): t.name for t in FrameType}),
        FlagsField("flags", 0, 8, {int(f): str(f.name) for f in FrameFlags if f}),
        IntField("epoch", 0),
        IntField("sequence", 0),
        LongField("timestamp", 0),
        IntField("length", None),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if _pkt is None:
            return cls
        # Segments are cut at the MSS, not at frames: one may end inside a
        # header (too short to dissect) or, under TCP, start inside a payload.
        # Without reassembly both are shown as Raw. Whole headers handed to
        # LVS directly are always dissected, bad magic and all.
        if len(_pkt) < HEADER_SIZE:
            return Raw
        if isinstance(kargs.get("_underlayer"), TCP) and not _pkt.startswith(MAGIC):
            return Raw
        return cls

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            # In a built chain (LVS / LVSControl / LVS / Raw) the payload bytes
            # run on into the next frame, which is not part of this one.
            following = self.payload.getlayer(LVS)
            length = len(pay) - (len(bytes(following)) if following is not None else 0)
            pkt = pkt[:_LENGTH_OFFSET] + length.to_bytes(4, "big") + pkt[_LENGTH_OFFSET + 4 :]
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes | None]:
        return s[: self.length], s[self.length :]

    def dissect(self, s: bytes) -> None:
        # Packet.dissect would file the bytes after this frame as Padding; in a
        # TCP segment they are the next frame, so they start the next LVS layer.
        s = self.post_dissect(self.do_dissect(self.pre_dissect(s)))
        payload, rest = self.extract_padding(s)
        self.do_dissect_payload(payload)
        if rest:
            self.add_payload(LVS(rest, _internal=1, _underlayer=self.lastlayer()))

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        return LVSControl if self.type == FrameType.CONTROL else Raw

    def mysummary(self) -> str:
        kind = self.get_field("type").i2repr(self, self.type)
        return self.sprintf(f"LVS {kind} epoch=%epoch% seq=%sequence% len=%length%")


def bind_port(port: int) -> None:
    """Dissect TCP traffic to or from `port` as LVS, as is done for DEFAULT_PORT."""
    bind_layers(TCP, LVS, dport=port)
    bind_layers(TCP, LVS, sport=port)


bind_port(DEFAULT_PORT)


def frame_packet(
    frame_type: int,
    payload: bytes = b"",
    *,
    flags: int = 0,
    epoch: int = 0,
    sequence: int = 0,
    timestamp_us: int = 0,
    length: int | None = None,
    magic: bytes = MAGIC,
) -> LVS:
    """A frame as a packet, with no validation: any field may be made to lie."""
    header = LVS(
        magic=magic,
        type=frame_type,
        flags=flags,
        epoch=epoch,
        sequence=sequence,
        timestamp=timestamp_us,
        length=length,
    )
    if not payload:
        return header
    body: Packet = LVSControl(text=payload) if frame_type == FrameType.CONTROL else Raw(payload)
    return header / body


def build_frame(
    frame_type: int,
    payload: bytes = b"",
    *,
    flags: int = 0,
    epoch: int = 0,
    sequence: int = 0,
    timestamp_us: int = 0,
    length: int | None = None,
    magic: bytes = MAGIC,
) -> bytes:
    """The bytes of `frame_packet(...)`."""
    return bytes(
        frame_packet(
            frame_type,
            payload,
            flags=flags,
            epoch=epoch,
            sequence=sequence,
            timestamp_us=timestamp_us,
            length=length,
            magic=magic,
        )
    )


def packet_from_frame(frame: Frame) -> LVS:
    return frame_packet(
        frame.type,
        frame.payload,
        flags=int(frame.flags),
        epoch=frame.epoch,
        sequence=frame.sequence,
        timestamp_us=frame.timestamp_us,
    )


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """Bytes a receiver must not accept, and how `FrameDecoder` must treat them.

    `rejected_with` None means no verdict is possible yet: the header promises
    more bytes than were sent, so a conforming receiver keeps waiting (and its
    read timeout, not the codec, ends the connection).
    """

    data: bytes
    rejected_with: ErrorCode | None


def malformed_cases() -> dict[str, MalformedFrame]:
    """Every malformed frame of the bad-input suite, by a name saying what is wrong."""
    control = FrameType.CONTROL
    video, audio, csd = FrameType.VIDEO, FrameType.AUDIO, FrameType.CSD
    text = b"STREAM_STATE|1|epoch=3"
    picture = bytes(range(64))
    keyframe = int(FrameFlags.KEYFRAME)

    def rejected(
        code: ErrorCode, frame_type: int, payload: bytes = b"", **kw: Any
    ) -> MalformedFrame:
        return MalformedFrame(build_frame(frame_type, payload, **kw), code)

    return {
        "bad_magic_swapped": rejected(ErrorCode.BAD_MAGIC, control, text, magic=b"VL"),
        "bad_magic_lowercase": rejected(ErrorCode.BAD_MAGIC, control, text, magic=b"lv"),
        "bad_magic_zero": rejected(ErrorCode.BAD_MAGIC, video, picture, magic=b"\0\0"),
        "unknown_type_0": rejected(ErrorCode.BAD_FRAME_TYPE, 0, picture),
        "unknown_type_5": rejected(ErrorCode.BAD_FRAME_TYPE, max(FrameType) + 1, picture),
        "unknown_type_255": rejected(ErrorCode.BAD_FRAME_TYPE, 0xFF, picture),
        "keyframe_flag_on_control": rejected(ErrorCode.BAD_FLAGS, control, text, flags=keyframe),
        "keyframe_flag_on_csd": rejected(ErrorCode.BAD_FLAGS, csd, picture, flags=keyframe),
        "keyframe_flag_on_audio": rejected(ErrorCode.BAD_FLAGS, audio, picture, flags=keyframe),
        "unknown_flag_0x02_on_video": rejected(ErrorCode.BAD_FLAGS, video, picture, flags=0x02),
        "all_flags_set_on_video": rejected(ErrorCode.BAD_FLAGS, video, picture, flags=0xFF),
        "control_payload_over_4096": rejected(
            ErrorCode.OVERSIZE, control, b"A" * (MAX_CONTROL_PAYLOAD + 1)
        ),
        # Header only: the decoder must refuse before buffering the payload (FRAME-1).
        "control_length_over_4096": rejected(
            ErrorCode.OVERSIZE, control, length=MAX_CONTROL_PAYLOAD + 1
        ),
        "video_length_over_max_payload": rejected(
            ErrorCode.OVERSIZE, video, length=DEFAULT_MAX_PAYLOAD + 1
        ),
        "length_uint32_max": rejected(ErrorCode.OVERSIZE, audio, picture, length=UINT32_MAX),
        "length_larger_than_payload": MalformedFrame(
            build_frame(video, picture, length=len(picture) + 100), None
        ),
        # The payload's tail is read as the next header; it is long enough to
        # be one and does not start with the magic, so framing is lost.
        "length_smaller_than_payload": rejected(
            ErrorCode.BAD_MAGIC, video, picture, length=len(picture) - HEADER_SIZE - 8
        ),
        "truncated_header": MalformedFrame(build_frame(control, text)[: HEADER_SIZE // 2], None),
    }


def malformed_frames() -> dict[str, bytes]:
    """The bytes of every `malformed_cases()` entry."""
    return {name: case.data for name, case in malformed_cases().items()}
