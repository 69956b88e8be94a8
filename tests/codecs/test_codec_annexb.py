"""Annex B splitting: the boundary between CSD and VIDEO payloads."""

from __future__ import annotations

import pytest

from reference.codecs import AnnexBError, join_nal_units, split_nal_units
from reference.codecs.annexb import separate_parameter_sets


def test_three_and_four_byte_start_codes() -> None:
    stream = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88"
    assert split_nal_units(stream) == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]
    assert join_nal_units(split_nal_units(stream)) == (
        b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88"
    )


def test_parameter_sets_are_separated_in_order() -> None:
    units = [b"\x67\x01", b"\x68\x02", b"\x06\x03", b"\x65\x04", b"\x65\x05"]
    assert separate_parameter_sets(units) == (units[:2], units[2:])


@pytest.mark.parametrize(
    "data", [b"", b"\x65\x88\x84", b"\x01\x00\x00\x01\x65", b"\x00\x00\x01\x85\x00"]
)
def test_not_annex_b(data: bytes) -> None:
    with pytest.raises(AnnexBError):
        split_nal_units(data)
