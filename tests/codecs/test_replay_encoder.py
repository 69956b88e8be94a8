"""The replay encoder: one GOP coded once, played in a loop, decodable across the loop."""

from __future__ import annotations

import pytest

from reference.codecs import EncoderFailure, FFmpegVideoDecoder, open_encoder
from reference.codecs.replay import REPLAY_PREFIX, ReplayEncoder
from reference.media import SyntheticSource, audit_picture

GOP = 10


def _replay(gop: int = GOP) -> tuple[ReplayEncoder, SyntheticSource]:
    coder = open_encoder("software", width=320, height=180, fps=30, bitrate=300_000, gop=gop)
    source = SyntheticSource(320, 180, 30, epoch=7)
    return ReplayEncoder(coder, source), SyntheticSource(320, 180, 30, epoch=7)


def test_loop_decodes_and_repeats_its_pictures(software_decoder: FFmpegVideoDecoder) -> None:
    encoder, expected = _replay()
    assert encoder.backend == REPLAY_PREFIX + "software"
    assert encoder.loop_length == GOP
    pacing = SyntheticSource(320, 180, 30, epoch=7)
    for number in range(3 * GOP + 3):
        (unit,) = encoder.encode(next(pacing))
        assert unit.pts == number  # restamped, not the loop's own
        assert unit.keyframe == (number % GOP == 0)
        assert (unit.csd is not None) == unit.keyframe
        if unit.csd is not None:
            software_decoder.configure(unit.csd)
        (picture,) = software_decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
        assert audit_picture(picture.luma()) == expected.expected(number % GOP)


def test_requested_keyframe_restarts_the_loop() -> None:
    encoder, _ = _replay()
    pacing = SyntheticSource(320, 180, 30, epoch=7)
    first = encoder.encode(next(pacing))[0]
    for _ in range(3):
        assert not encoder.encode(next(pacing))[0].keyframe
    forced = encoder.encode(next(pacing), force_keyframe=True)[0]
    assert forced.keyframe and forced.data == first.data and forced.csd == first.csd
    assert forced.pts == 4
    assert not encoder.encode(next(pacing))[0].keyframe


def test_closed_replay_refuses_to_encode() -> None:
    encoder, _ = _replay()
    encoder.close()
    with pytest.raises(EncoderFailure, match="closed"):
        encoder.encode(next(SyntheticSource(320, 180, 30, epoch=7)))
