"""Software encode -> decode through PyAV, every decoded picture audited."""

from __future__ import annotations

import random

import pytest
from codec_streams import EncodedStream, encode_stream

from reference.codecs import (
    DecodeError,
    EncoderFailure,
    FFmpegVideoDecoder,
    KeyframeRequired,
    NalType,
    open_decoder,
    open_encoder,
    split_nal_units,
)
from reference.codecs.annexb import nal_type
from reference.media import SyntheticSource, audit_picture


def _decode_all(decoder: FFmpegVideoDecoder, stream: EncodedStream) -> None:
    """Decode every unit, one picture each, and check the picture is the right one."""
    for number, unit in enumerate(stream.units):
        if unit.csd is not None:
            decoder.configure(unit.csd)
        pictures = decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
        assert len(pictures) == 1, f"unit {number} gave {len(pictures)} pictures"
        (picture,) = pictures
        assert picture.pts == unit.pts == number
        assert audit_picture(picture.luma()) == stream.source.expected(number)


@pytest.mark.parametrize(
    ("width", "height", "bitrate"),
    [(640, 360, 800_000), (1280, 720, 1_500_000), (640, 360, 300_000)],
)
def test_round_trip_audits_every_picture(
    software_decoder: FFmpegVideoDecoder,
    width: int,
    height: int,
    bitrate: int,
) -> None:
    stream = encode_stream(
        width, height, frames=90, bitrate=bitrate, epoch=0xC0DE, force_keyframes={45}
    )
    _decode_all(software_decoder, stream)
    # The rate control held the target: the audit did not pass on a fat stream.
    seconds = len(stream.units) / 30
    assert sum(len(u.data) for u in stream.units) * 8 / seconds < bitrate * 1.2


@pytest.mark.parametrize(("width", "height"), [(320, 180), (1920, 1080)])
def test_round_trip_at_size_extremes(
    software_decoder: FFmpegVideoDecoder,
    width: int,
    height: int,
) -> None:
    bitrate = 200_000 if width == 320 else 2_000_000
    _decode_all(software_decoder, encode_stream(width, height, frames=20, bitrate=bitrate))


def test_forced_keyframe_carries_csd(short_stream: EncodedStream) -> None:
    keyframes = [n for n, u in enumerate(short_stream.units) if u.keyframe]
    assert keyframes == [0, 20]
    for unit in short_stream.units:
        types = [nal_type(u) for u in split_nal_units(unit.data)]
        assert NalType.SPS not in types and NalType.PPS not in types
        if unit.keyframe:
            assert unit.csd is not None
            assert sorted(nal_type(u) for u in split_nal_units(unit.csd)) == [
                NalType.SPS,
                NalType.PPS,
            ]
            assert NalType.IDR_SLICE in types
        else:
            assert unit.csd is None
            assert NalType.IDR_SLICE not in types


def test_gop_schedules_keyframes() -> None:
    stream = encode_stream(320, 180, frames=25, bitrate=200_000, gop=10)
    assert [n for n, u in enumerate(stream.units) if u.keyframe] == [0, 10, 20]


def test_reset_then_keyframe_decodes(
    short_stream: EncodedStream, software_decoder: FFmpegVideoDecoder
) -> None:
    units = short_stream.units
    software_decoder.configure(units[0].csd or b"")
    for unit in units[:5]:
        software_decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)

    software_decoder.reset()
    with pytest.raises(DecodeError, match="configure"):
        software_decoder.decode(units[20].data, keyframe=True, pts=20)
    software_decoder.configure(units[20].csd or b"")
    with pytest.raises(KeyframeRequired):
        software_decoder.decode(units[21].data, keyframe=False, pts=21)
    for number in range(20, 30):
        unit = units[number]
        (picture,) = software_decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
        assert audit_picture(picture.luma()) == short_stream.source.expected(number)


def _garbage_inputs(keyframe: bytes) -> dict[str, bytes]:
    rng = random.Random(7)
    header = 40  # past the slice headers, into the entropy-coded macroblocks
    return {
        "random bytes": rng.randbytes(2000),
        "start code then noise": b"\x00\x00\x00\x01\x65" + rng.randbytes(2000),
        "forbidden bit": b"\x00\x00\x00\x01\xe5" + keyframe[5:],
        "empty": b"",
        "noise after slice header": keyframe[:header] + rng.randbytes(len(keyframe) - header),
        "truncated keyframe": keyframe[: len(keyframe) // 3],
        "parameter sets only": b"\x00\x00\x00\x01\x67\x42\x00\x1e",
    }


@pytest.mark.parametrize("case", list(_garbage_inputs(b"\0" * 64)))
def test_garbage_raises_decode_error_and_decoder_recovers(
    short_stream: EncodedStream, software_decoder: FFmpegVideoDecoder, case: str
) -> None:
    first = short_stream.units[0]
    software_decoder.configure(first.csd or b"")
    software_decoder.decode(first.data, keyframe=True, pts=0)
    garbage = _garbage_inputs(first.data)[case]
    with pytest.raises(DecodeError):
        software_decoder.decode(garbage, keyframe=True, pts=1)
    # A unit was lost, so the deltas after it have nothing sound to refer to;
    # the same decoder takes the next keyframe.
    assert software_decoder.awaiting_keyframe
    delta = short_stream.units[1]
    with pytest.raises(KeyframeRequired):
        software_decoder.decode(delta.data, keyframe=False, pts=1)
    key = short_stream.units[20]
    (picture,) = software_decoder.decode(key.data, keyframe=True, pts=20)
    assert audit_picture(picture.luma()) == short_stream.source.expected(20)


def test_garbage_csd_raises_decode_error(software_decoder: FFmpegVideoDecoder) -> None:
    with pytest.raises(DecodeError, match="Annex B"):
        software_decoder.configure(b"not a stream")
    with pytest.raises(DecodeError, match="SPS and PPS"):
        software_decoder.configure(b"\x00\x00\x00\x01\x65\x88\x84")


def test_encoder_failure_is_distinct() -> None:
    source = SyntheticSource(320, 180, 30, epoch=1)
    encoder = open_encoder("software", width=320, height=180, fps=30, bitrate=200_000)
    encoder.encode(source.picture(0))
    encoder.flush()
    # After end of stream FFmpeg refuses pictures: a real mid-stream failure.
    with pytest.raises(EncoderFailure) as caught:
        encoder.encode(source.picture(1))
    assert caught.value.backend == "software"
    encoder.close()
    with pytest.raises(EncoderFailure, match="closed"):
        encoder.encode(source.picture(2))


def test_decoder_drain_returns_nothing_pending_for_low_delay_software(
    short_stream: EncodedStream,
) -> None:
    decoder = open_decoder("software")
    unit = short_stream.units[0]
    decoder.configure(unit.csd or b"")
    assert len(decoder.decode(unit.data, keyframe=True, pts=0)) == 1
    assert decoder.drain() == []
    assert decoder.awaiting_keyframe
