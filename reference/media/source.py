"""A synthetic camera whose every picture says which epoch and frame it is.

Each picture carries a *marker*: a 16 x 5 grid of black or white cells near
the top-left corner that spells out 80 bits:

    sync (8) | epoch (32) | frame number (24) | CRC-16 of epoch+frame (16)

Cells are at least 16 x 16 px and sit on the 16-pixel macroblock grid, so
H.264 codes each one as a flat block: even at 300 kbit/s the decoded cell
keeps its level. The reader samples only the inner half of each cell (edges
are where compression smears), calibrates black and white from the sync
cells of the picture itself, refuses cells that are neither, and checks
the CRC. A black, grey, noisy or torn picture therefore reads as nothing,
never as a wrong number.

Everything outside the marker is a textured pattern scrolling diagonally,
so the encoder does real motion search and spends real bits.

Frame numbers count from 0 for each source, and a source has one epoch:
the Primary starts a new `SyntheticSource` when it reconfigures. The frame
number wraps at 2**24 (about 78 hours at 60 fps).
"""

from __future__ import annotations

import binascii
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import av

from .picture import LumaPlane

MARKER_COLUMNS = 16
MARKER_ROWS = 5
SYNC_BITS = (1, 0, 1, 1, 0, 0, 1, 0)
EPOCH_BITS = 32
FRAME_BITS = 24
CRC_BITS = 16
MARKER_BITS = len(SYNC_BITS) + EPOCH_BITS + FRAME_BITS + CRC_BITS
assert MARKER_BITS == MARKER_COLUMNS * MARKER_ROWS

# Video-range black and white: what a decoder reproduces without clipping.
BLACK = 16
WHITE = 235
NEUTRAL_CHROMA = 128

# Below this black/white spread the picture is black, grey or washed out:
# nothing in it can be trusted to be a marker.
MIN_CONTRAST = 64.0
# A cell further than this share of the contrast from its level is neither
# black nor white: torn, smeared or noise.
MAX_CELL_DEVIATION = 0.35

_TEXTURE_PERIOD = 256
_SCROLL_PER_FRAME = (5, 3)


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What a picture's marker says: the epoch and frame number it was made for."""

    epoch: int
    frame_number: int


@dataclass(frozen=True, slots=True)
class MarkerUnreadable:
    """Why a picture's marker could not be read (black, grey, corrupted...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class MarkerLayout:
    """Where the marker's cells are in a picture of a given size."""

    cell: int
    left: int
    top: int

    @classmethod
    def for_size(cls, width: int, height: int) -> MarkerLayout:
        # Cells grow with the picture so the marker's share of the bitrate
        # and its robustness stay the same from 320x180 to 1920x1080.
        cell = 16 * max(1, min(width // 320, height // 180))
        layout = cls(cell=cell, left=16, top=16)
        if layout.right > width or layout.bottom > height:
            raise ValueError(
                f"{width}x{height} is too small for the marker: it needs "
                f"{layout.right}x{layout.bottom}"
            )
        return layout

    @property
    def right(self) -> int:
        return self.left + MARKER_COLUMNS * self.cell

    @property
    def bottom(self) -> int:
        return self.top + MARKER_ROWS * self.cell

    def sample_box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the inner half of cell `index`."""
        row, column = divmod(index, MARKER_COLUMNS)
        inset = self.cell // 4
        left = self.left + column * self.cell + inset
        top = self.top + row * self.cell + inset
        return left, top, left + self.cell - 2 * inset, top + self.cell - 2 * inset


def _checksum(epoch: int, frame_number: int) -> int:
    payload = epoch.to_bytes(4, "big") + frame_number.to_bytes(3, "big")
    return binascii.crc_hqx(payload, 0xFFFF)


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> shift) & 1 for shift in range(width - 1, -1, -1)]


def _from_bits(bits: list[int]) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | bit
    return value


def marker_bits(epoch: int, frame_number: int) -> list[int]:
    if not 0 <= epoch < 2**EPOCH_BITS:
        raise ValueError(f"epoch {epoch} does not fit in {EPOCH_BITS} bits")
    frame_number %= 2**FRAME_BITS
    return [
        *SYNC_BITS,
        *_to_bits(epoch, EPOCH_BITS),
        *_to_bits(frame_number, FRAME_BITS),
        *_to_bits(_checksum(epoch, frame_number), CRC_BITS),
    ]


@cache
def _texture_rows() -> tuple[bytes, ...]:
    """A 256 x 256 tile that repeats seamlessly in both directions.

    Smooth waves (cheap to code once motion is found) plus 8 x 8 blocks of
    fixed pseudo-random detail (what motion search has to lock onto).
    """
    rng = random.Random(0x1F5)
    period = _TEXTURE_PERIOD
    blocks = [[rng.randrange(-24, 25) for _ in range(period // 8)] for _ in range(period // 8)]
    step = 2 * math.pi / period
    rows = []
    for y in range(period):
        row = bytearray(period)
        for x in range(period):
            value = (
                128
                + 36 * math.sin(3 * step * x + 1.0)
                + 28 * math.sin(2 * step * y)
                + 20 * math.sin(5 * step * (x + y))
                + blocks[y // 8][x // 8]
            )
            row[x] = max(BLACK, min(WHITE, round(value)))
        rows.append(bytes(row))
    return tuple(rows)


class SyntheticSource:
    """Deterministic yuv420p pictures for one epoch; picture n is always the same."""

    def __init__(self, width: int, height: int, fps: int | Fraction, epoch: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        if not 0 <= epoch < 2**EPOCH_BITS:
            raise ValueError(f"epoch {epoch} does not fit in {EPOCH_BITS} bits")
        self.width = width
        self.height = height
        self.fps = Fraction(fps)
        self.epoch = epoch
        self.time_base = 1 / self.fps
        self.layout = MarkerLayout.for_size(width, height)
        self._next_frame_number = 0
        repeats = -(-(width + _TEXTURE_PERIOD) // _TEXTURE_PERIOD)
        self._wide_rows = [row * repeats for row in _texture_rows()]
        chroma_size = (width // 2) * (height // 2)
        self._chroma = bytes([NEUTRAL_CHROMA]) * chroma_size

    def __iter__(self) -> SyntheticSource:
        return self

    def __next__(self) -> av.VideoFrame:
        frame = self.picture(self._next_frame_number)
        self._next_frame_number += 1
        return frame

    def expected(self, frame_number: int) -> AuditResult:
        return AuditResult(self.epoch, frame_number % 2**FRAME_BITS)

    def luma_rows(self, frame_number: int) -> list[bytes]:
        """Picture `frame_number`'s luma, one `bytes` of `width` per row."""
        width, layout = self.width, self.layout
        dx = (_SCROLL_PER_FRAME[0] * frame_number) % _TEXTURE_PERIOD
        dy = (_SCROLL_PER_FRAME[1] * frame_number) % _TEXTURE_PERIOD
        rows = [
            self._wide_rows[(y + dy) % _TEXTURE_PERIOD][dx : dx + width] for y in range(self.height)
        ]
        bits = marker_bits(self.epoch, frame_number)
        level = (bytes([BLACK]) * layout.cell, bytes([WHITE]) * layout.cell)
        for marker_row in range(MARKER_ROWS):
            first = marker_row * MARKER_COLUMNS
            cells = b"".join(level[bit] for bit in bits[first : first + MARKER_COLUMNS])
            top = layout.top + marker_row * layout.cell
            for y in range(top, top + layout.cell):
                rows[y] = rows[y][: layout.left] + cells + rows[y][layout.right :]
        return rows

    def picture(self, frame_number: int) -> av.VideoFrame:
        """Picture `frame_number` as a yuv420p frame with pts = frame number."""
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        luma, cb, cr = frame.planes
        # FFmpeg pads rows to its alignment; the padding follows every row.
        padding = bytes(luma.line_size - self.width)
        luma.update(b"".join(row + padding for row in self.luma_rows(frame_number)))
        for plane in (cb, cr):
            if plane.line_size == self.width // 2:
                plane.update(self._chroma)
            else:
                plane.update(bytes([NEUTRAL_CHROMA]) * plane.buffer_size)
        frame.pts = frame_number
        frame.time_base = self.time_base
        return frame


def read_marker(picture: LumaPlane | av.VideoFrame) -> AuditResult | MarkerUnreadable:
    """The epoch and frame number in `picture`'s marker, or why there is none."""
    luma = picture if isinstance(picture, LumaPlane) else LumaPlane.from_frame(picture)
    try:
        layout = MarkerLayout.for_size(luma.width, luma.height)
    except ValueError as exc:
        return MarkerUnreadable(str(exc))
    levels = [luma.region_mean(*layout.sample_box(i)) for i in range(MARKER_BITS)]

    sync = levels[: len(SYNC_BITS)]
    white = [v for v, bit in zip(sync, SYNC_BITS, strict=True) if bit]
    black = [v for v, bit in zip(sync, SYNC_BITS, strict=True) if not bit]
    white_level, black_level = sum(white) / len(white), sum(black) / len(black)
    contrast = white_level - black_level
    if contrast < MIN_CONTRAST:
        return MarkerUnreadable(
            f"no marker contrast: white {white_level:.0f}, black {black_level:.0f}"
        )

    threshold = (white_level + black_level) / 2
    tolerance = MAX_CELL_DEVIATION * contrast
    bits: list[int] = []
    for index, value in enumerate(levels):
        bit = int(value >= threshold)
        if abs(value - (white_level if bit else black_level)) > tolerance:
            return MarkerUnreadable(
                f"cell {index} is neither black nor white: {value:.0f} "
                f"(black {black_level:.0f}, white {white_level:.0f})"
            )
        bits.append(bit)
    if tuple(bits[: len(SYNC_BITS)]) != SYNC_BITS:
        return MarkerUnreadable(f"sync cells read {bits[: len(SYNC_BITS)]}")

    position = len(SYNC_BITS)
    values = []
    for width in (EPOCH_BITS, FRAME_BITS, CRC_BITS):
        values.append(_from_bits(bits[position : position + width]))
        position += width
    epoch, frame_number, checksum = values
    if checksum != _checksum(epoch, frame_number):
        return MarkerUnreadable(
            f"checksum mismatch: epoch {epoch} frame {frame_number} carry "
            f"{checksum:#06x}, expected {_checksum(epoch, frame_number):#06x}"
        )
    return AuditResult(epoch, frame_number)


def audit_picture(picture: LumaPlane | av.VideoFrame) -> AuditResult | None:
    """The epoch and frame number a decoded picture shows; None if it shows none."""
    reading = read_marker(picture)
    return reading if isinstance(reading, AuditResult) else None
