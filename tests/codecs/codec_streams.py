"""Real libx264 streams of the synthetic source, shared by the codec tests."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from reference.codecs import EncodedUnit, open_encoder
from reference.media import SyntheticSource


@dataclass(frozen=True)
class EncodedStream:
    source: SyntheticSource
    units: list[EncodedUnit]


def encode_stream(
    width: int = 640,
    height: int = 360,
    *,
    frames: int = 30,
    bitrate: int = 600_000,
    epoch: int = 5,
    gop: int | None = None,
    force_keyframes: Collection[int] = (),
) -> EncodedStream:
    source = SyntheticSource(width, height, 30, epoch)
    encoder = open_encoder("software", width=width, height=height, fps=30, bitrate=bitrate, gop=gop)
    units: list[EncodedUnit] = []
    for number in range(frames):
        out = encoder.encode(source.picture(number), force_keyframe=number in force_keyframes)
        # Low latency is part of the contract: each picture's unit comes out
        # of encode() for that very picture.
        assert len(out) == 1, f"picture {number} gave {len(out)} units"
        units.extend(out)
    assert encoder.flush() == []
    encoder.close()
    return EncodedStream(source, units)
