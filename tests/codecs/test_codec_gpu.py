"""NVIDIA paths, run only where the hardware is there (skipped elsewhere).

Data-centre GPUs (H100, A100) have NVDEC but no NVENC, so the decode tests
feed the hardware decoder libx264 output: software encode -> NVDEC ->
audit. The NVENC test runs only on parts that have an encoder unit.
"""

from __future__ import annotations

import pytest
from codec_streams import encode_stream

from reference.codecs import (
    DecodedPicture,
    KeyframeRequired,
    open_decoder,
    open_encoder,
    probe_decoders,
    probe_encoders,
)
from reference.media import SyntheticSource, audit_picture

pytestmark = pytest.mark.gpu


def _require(outcomes: dict[str, tuple[bool, str]], name: str) -> None:
    ok, reason = outcomes[name]
    if not ok:
        pytest.skip(f"{name} unavailable here: {reason}")


@pytest.fixture(scope="module")
def decoder_outcomes() -> dict[str, tuple[bool, str]]:
    return {o.backend: (o.ok, o.reason) for o in probe_decoders()}


@pytest.mark.parametrize("backend", ["nvdec", "cuvid"])
def test_hardware_decode_of_software_stream_audits(
    decoder_outcomes: dict[str, tuple[bool, str]], backend: str
) -> None:
    _require(decoder_outcomes, backend)
    stream = encode_stream(1280, 720, frames=60, bitrate=1_500_000, force_keyframes={30})
    decoder = open_decoder(backend)
    assert decoder.backend == backend
    pictures: list[DecodedPicture] = []
    for unit in stream.units:
        if unit.csd is not None:
            decoder.configure(unit.csd)
        pictures.extend(decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts))
    # A hardware queue may still hold the last pictures; nothing may be lost.
    pictures.extend(decoder.drain())
    audits = [audit_picture(picture.luma()) for picture in pictures]
    assert audits == [stream.source.expected(n) for n in range(60)]


@pytest.mark.parametrize("backend", ["nvdec", "cuvid"])
def test_hardware_decoder_reset_restarts_at_keyframe(
    decoder_outcomes: dict[str, tuple[bool, str]], backend: str
) -> None:
    _require(decoder_outcomes, backend)
    stream = encode_stream(640, 360, frames=30, force_keyframes={20})
    decoder = open_decoder(backend)
    decoder.configure(stream.units[0].csd or b"")
    for unit in stream.units[:5]:
        decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
    decoder.reset()
    decoder.configure(stream.units[20].csd or b"")
    with pytest.raises(KeyframeRequired):
        decoder.decode(stream.units[21].data, keyframe=False, pts=21)
    pictures: list[DecodedPicture] = []
    for unit in stream.units[20:]:
        pictures.extend(decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts))
    pictures.extend(decoder.drain())
    assert [audit_picture(p.luma()) for p in pictures] == [
        stream.source.expected(n) for n in range(20, 30)
    ]


def test_nvenc_stream_decodes_in_software() -> None:
    outcomes = {o.backend: (o.ok, o.reason) for o in probe_encoders(width=640, height=360)}
    _require(outcomes, "nvenc")
    source = SyntheticSource(640, 360, 30, epoch=11)
    encoder = open_encoder("nvenc", width=640, height=360, fps=30, bitrate=800_000)
    decoder = open_decoder("software")
    for number in range(40):
        units = encoder.encode(source.picture(number), force_keyframe=number == 25)
        assert len(units) == 1, "NVENC held a picture back despite zerolatency/delay=0"
        (unit,) = units
        if number in (0, 25):
            assert unit.keyframe and unit.csd is not None
        if unit.csd is not None:
            decoder.configure(unit.csd)
        (picture,) = decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
        assert audit_picture(picture.luma()) == source.expected(number)
