"""Frame codec: round trips, arbitrary chunking, and hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from reference.protocol.frames import (
    DEFAULT_MAX_PAYLOAD,
    HEADER_SIZE,
    MAX_CONTROL_PAYLOAD,
    Frame,
    FrameDecoder,
    FrameFlags,
    FrameType,
    encode_frame,
    encode_header,
)

frames = st.builds(
    lambda t, payload, epoch, seq, ts, key: Frame(
        type=t,
        payload=payload[:MAX_CONTROL_PAYLOAD] if t is FrameType.CONTROL else payload,
        epoch=epoch,
        sequence=seq,
        timestamp_us=ts,
        flags=FrameFlags.KEYFRAME if key and t is FrameType.VIDEO else FrameFlags.NONE,
    ),
    st.sampled_from(FrameType),
    st.binary(max_size=6000),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.booleans(),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in [*points, len(data)]:
        chunks.append(data[last:p])
        last = p
    return chunks


@given(st.lists(frames, max_size=8), st.lists(st.integers(0, 10**6), max_size=30))
def test_round_trip_under_any_chunking(sent: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    decoder = FrameDecoder()
    received: list[Frame] = []
    for chunk in split(stream, cuts):
        decoder.feed(chunk)
        received += decoder.frames()
    assert received == sent
    assert decoder.buffered == 0


@settings(max_examples=300)
@given(st.binary(max_size=200), st.lists(st.integers(0, 300), max_size=5))
def test_random_bytes_only_raise_the_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_payload=1024)
    try:
        for chunk in split(data, cuts):
            decoder.feed(chunk)
            decoder.frames()
    except RemoteProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)
        assert str(exc)


@settings(max_examples=200)
@given(frames, st.integers(0, 30), st.integers(0, 255))
def test_mutated_frames_decode_or_raise_the_protocol_error(
    frame: Frame, position: int, value: int
) -> None:
    data = bytearray(encode_frame(frame))
    data[position % len(data)] = value
    decoder = FrameDecoder()
    try:
        decoder.feed(bytes(data))
        decoder.frames()
    except ProtocolError as exc:
        assert isinstance(exc, RemoteProtocolError)


def test_oversize_length_rejected_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(max_payload=1000)
    decoder.feed(encode_header(FrameType.VIDEO, 0, 1, 0, 0, 1001))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.code is ErrorCode.OVERSIZE
    assert decoder.buffered == 0  # nothing was allocated for the announced payload


def test_gigantic_length_costs_no_memory() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_header(FrameType.VIDEO, 0, 1, 0, 0, 2**32 - 1))
    with pytest.raises(RemoteProtocolError, match="exceeds the limit"):
        decoder.next_frame()


def test_control_payload_limit_is_smaller() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_header(FrameType.CONTROL, 0, 0, 0, 0, MAX_CONTROL_PAYLOAD + 1))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.code is ErrorCode.OVERSIZE


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"XX" + encode_header(1, 0, 0, 0, 0, 0)[2:], ErrorCode.BAD_MAGIC),
        (encode_header(9, 0, 0, 0, 0, 0), ErrorCode.BAD_FRAME_TYPE),
        (encode_header(FrameType.CONTROL, 1, 0, 0, 0, 0), ErrorCode.BAD_FLAGS),
        (encode_header(FrameType.VIDEO, 0x80, 0, 0, 0, 0), ErrorCode.BAD_FLAGS),
    ],
)
def test_malformed_headers(header: bytes, code: ErrorCode) -> None:
    decoder = FrameDecoder()
    decoder.feed(header)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.code is code
    # Framing is lost for good: the decoder keeps refusing.
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"more")


def test_header_is_24_bytes_big_endian() -> None:
    frame = Frame(FrameType.VIDEO, b"xy", 0x01020304, 0x05060708, 0x090A0B0C0D0E0F10,
                  FrameFlags.KEYFRAME)
    data = encode_frame(frame)
    assert HEADER_SIZE == 24
    assert data[:24].hex() == "4c56" "03" "01" "01020304" "05060708" "090a0b0c0d0e0f10" "00000002"
    assert data[24:] == b"xy"


def test_encoder_refuses_frames_it_could_not_decode() -> None:
    with pytest.raises(ValueError):
        encode_frame(Frame(FrameType.VIDEO, b"x" * (DEFAULT_MAX_PAYLOAD + 1)))
    with pytest.raises(ValueError):
        encode_frame(Frame(FrameType.AUDIO, b"", flags=FrameFlags.KEYFRAME))
