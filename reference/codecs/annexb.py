"""H.264 Annex B byte streams: NAL units between start codes.

LVS sends parameter sets (SPS/PPS) in CSD frames and access units in VIDEO
frames, so the encoder's output has to be cut apart at NAL unit boundaries
and the decoder's input checked before FFmpeg sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum

START_CODE = b"\x00\x00\x00\x01"
_SHORT_START_CODE = b"\x00\x00\x01"


class NalType(IntEnum):
    """The NAL unit types LVS cares about (ITU-T H.264 table 7-1)."""

    SLICE = 1
    IDR_SLICE = 5
    SEI = 6
    SPS = 7
    PPS = 8
    ACCESS_UNIT_DELIMITER = 9
    FILLER = 12


PARAMETER_SET_TYPES = frozenset({NalType.SPS, NalType.PPS})
SLICE_TYPES = frozenset({NalType.SLICE, NalType.IDR_SLICE})


class AnnexBError(ValueError):
    """The bytes are not an Annex B byte stream."""


def split_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of `data` (start codes removed), in stream order."""
    first = data.find(_SHORT_START_CODE)
    # Only zero bytes may precede the first start code (a 4-byte start code
    # is a zero byte plus the 3-byte one).
    if first < 0 or data[:first].strip(b"\x00"):
        raise AnnexBError("does not begin with a start code")
    units: list[bytes] = []
    start = first + len(_SHORT_START_CODE)
    while True:
        following = data.find(_SHORT_START_CODE, start)
        end = len(data) if following < 0 else following
        # A NAL unit never ends in a zero byte (its RBSP ends with a stop
        # bit), so trailing zeros are the first byte of a 4-byte start code.
        unit = data[start:end].rstrip(b"\x00")
        if unit:
            if unit[0] & 0x80:
                raise AnnexBError(f"NAL unit at byte {start} has forbidden_zero_bit set")
            units.append(unit)
        if following < 0:
            return units
        start = following + len(_SHORT_START_CODE)


def nal_type(unit: bytes) -> int:
    return unit[0] & 0x1F


def join_nal_units(units: Iterable[bytes]) -> bytes:
    return b"".join(START_CODE + unit for unit in units)


def separate_parameter_sets(units: Sequence[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(SPS/PPS units, all other units), each in stream order."""
    parameter_sets = [u for u in units if nal_type(u) in PARAMETER_SET_TYPES]
    others = [u for u in units if nal_type(u) not in PARAMETER_SET_TYPES]
    return parameter_sets, others
