"""Fixtures for the codec tests: shared streams and a fresh software decoder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from codec_streams import EncodedStream, encode_stream

from reference.codecs import FFmpegVideoDecoder, open_decoder


@pytest.fixture(scope="session")
def short_stream() -> EncodedStream:
    """640x360, 30 pictures, keyframes at 0 and (forced) 20."""
    return encode_stream(frames=30, force_keyframes=frozenset({20}))


@pytest.fixture
def software_decoder() -> Iterator[FFmpegVideoDecoder]:
    decoder = open_decoder("software")
    yield decoder
    decoder.close()
