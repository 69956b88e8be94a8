"""The synthetic source's marker: written into every picture, read back or refused."""

from __future__ import annotations

import random

import av
import pytest

from reference.media import LumaPlane, MarkerLayout, SyntheticSource, audit_picture, read_marker
from reference.media.source import MarkerUnreadable


def _flat(width: int, height: int, level: int) -> LumaPlane:
    return LumaPlane(width, height, width, bytes([level]) * (width * height))


@pytest.mark.parametrize(
    ("width", "height"), [(320, 180), (426, 240), (640, 360), (1280, 720), (1920, 1080)]
)
def test_every_picture_reads_back_its_epoch_and_number(width: int, height: int) -> None:
    source = SyntheticSource(width, height, 30, epoch=2**32 - 1)
    for number in (0, 1, 2, 255, 4096, 2**24 - 1):
        assert audit_picture(source.picture(number)) == source.expected(number)


def test_layout_cells_are_macroblock_sized_and_aligned() -> None:
    for width, height in [(320, 180), (640, 360), (1280, 720), (1920, 1080)]:
        layout = MarkerLayout.for_size(width, height)
        assert layout.cell >= 16
        assert layout.cell % 16 == layout.left % 16 == layout.top % 16 == 0


def test_iteration_counts_from_zero_and_pictures_are_deterministic() -> None:
    source = SyntheticSource(320, 180, 30, epoch=9)
    first, second = next(source), next(source)
    assert (first.pts, second.pts) == (0, 1)
    assert audit_picture(second) == source.expected(1)
    again = SyntheticSource(320, 180, 30, epoch=9).picture(1)
    assert bytes(again.planes[0]) == bytes(second.planes[0])


def test_content_moves_between_pictures() -> None:
    source = SyntheticSource(320, 180, 30, epoch=0)
    rows_a, rows_b = source.luma_rows(0), source.luma_rows(1)
    below_marker = source.layout.bottom
    assert rows_a[below_marker:] != rows_b[below_marker:]


@pytest.mark.parametrize("level", [0, 16, 128, 235])
def test_flat_pictures_are_refused(level: int) -> None:
    assert audit_picture(_flat(640, 360, level)) is None
    reading = read_marker(_flat(640, 360, level))
    assert isinstance(reading, MarkerUnreadable)
    assert "contrast" in reading.reason


@pytest.mark.parametrize("seed", range(5))
def test_noise_is_refused(seed: int) -> None:
    rng = random.Random(seed)
    assert audit_picture(LumaPlane(640, 360, 640, rng.randbytes(640 * 360))) is None


def test_flipped_cell_is_refused_by_the_checksum() -> None:
    source = SyntheticSource(640, 360, 30, epoch=3)
    rows = source.luma_rows(10)
    layout = source.layout
    # Invert one frame-number cell (index 50) entirely: a clean, wrong bit.
    row, column = divmod(50, 16)
    left = layout.left + column * layout.cell
    top = layout.top + row * layout.cell
    for y in range(top, top + layout.cell):
        cell = rows[y][left : left + layout.cell]
        inverted = bytes(251 - value for value in cell)
        rows[y] = rows[y][:left] + inverted + rows[y][left + layout.cell :]
    reading = read_marker(LumaPlane(640, 360, 640, b"".join(rows)))
    assert isinstance(reading, MarkerUnreadable)
    assert "checksum" in reading.reason


def test_grey_smeared_cell_is_refused() -> None:
    source = SyntheticSource(640, 360, 30, epoch=3)
    rows = source.luma_rows(10)
    layout = source.layout
    top, left = layout.top + layout.cell, layout.left + 3 * layout.cell
    for y in range(top, top + layout.cell):
        rows[y] = rows[y][:left] + bytes([125]) * layout.cell + rows[y][left + layout.cell :]
    reading = read_marker(LumaPlane(640, 360, 640, b"".join(rows)))
    assert isinstance(reading, MarkerUnreadable)
    assert "neither black nor white" in reading.reason


def test_too_small_pictures() -> None:
    with pytest.raises(ValueError, match="too small"):
        SyntheticSource(256, 96, 30, epoch=0)
    assert audit_picture(_flat(256, 96, 128)) is None


def test_non_eight_bit_frames_are_rejected() -> None:
    with pytest.raises(ValueError, match="8-bit luma"):
        LumaPlane.from_frame(av.VideoFrame(320, 180, "rgb24"))
