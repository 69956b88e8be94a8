"""Address swap and checksums (checked against a full recomputation), netem arguments."""

from __future__ import annotations

import struct

import pytest

from harness.packet.impairment import GilbertElliott, Impairment
from harness.packet.ipv4 import (
    DOWNSTREAM,
    UPSTREAM,
    TunAddresses,
    direction_of,
    internet_checksum,
    swap_addresses,
)
from harness.packet.netem import NetemError, change_command, netem_args, setup_commands

ADDRESSES = TunAddresses.in_block("198.18.0.8/29")


def _packet(source: bytes, destination: bytes, protocol: int, payload: bytes) -> bytearray:
    if protocol == 6:
        transport = bytearray(
            struct.pack("!HHIIBBHHH", 40000, 5000, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
        )
    else:
        transport = bytearray(struct.pack("!HHHH", 40000, 5000, 8 + len(payload), 0))
    transport += payload
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(transport),
            1,
            0x4000,
            64,
            protocol,
            0,
            source,
            destination,
        )
    )
    struct.pack_into("!H", header, 10, internet_checksum(header))
    _set_transport_checksum(header, transport, protocol)
    return header + transport


def _set_transport_checksum(header: bytearray, transport: bytearray, protocol: int) -> None:
    at = 16 if protocol == 6 else 6
    struct.pack_into("!H", transport, at, 0)
    pseudo = header[12:20] + struct.pack("!BBH", 0, protocol, len(transport))
    struct.pack_into("!H", transport, at, internet_checksum(pseudo + transport))


def _valid(packet: bytearray) -> bool:
    header, transport = packet[:20], bytearray(packet[20:])
    if internet_checksum(header) != 0:
        return False
    pseudo = header[12:20] + struct.pack("!BBH", 0, packet[9], len(transport))
    return internet_checksum(pseudo + transport) == 0


@pytest.mark.parametrize("protocol", [6, 17])
@pytest.mark.parametrize("payload", [b"", b"odd", b"lvs frame bytes" * 97])
def test_swap_keeps_every_checksum_valid(protocol: int, payload: bytes) -> None:
    up = _packet(ADDRESSES.local, ADDRESSES.primary, protocol, payload)
    assert direction_of(up, ADDRESSES) == UPSTREAM
    swap_addresses(up, UPSTREAM, ADDRESSES)
    assert (bytes(up[12:16]), bytes(up[16:20])) == (ADDRESSES.viewer, ADDRESSES.local)
    assert _valid(up)
    down = _packet(ADDRESSES.local, ADDRESSES.viewer, protocol, payload)
    assert direction_of(down, ADDRESSES) == DOWNSTREAM
    swap_addresses(down, DOWNSTREAM, ADDRESSES)
    assert (bytes(down[12:16]), bytes(down[16:20])) == (ADDRESSES.primary, ADDRESSES.local)
    assert _valid(down)


def test_other_packets_are_not_ours() -> None:
    assert direction_of(bytearray(b"\x60" + bytes(39)), ADDRESSES) is None  # IPv6
    stray = _packet(ADDRESSES.local, bytes([198, 18, 0, 14]), 6, b"")
    assert direction_of(stray, ADDRESSES) is None


def test_a_block_must_be_a_slash_29() -> None:
    with pytest.raises(ValueError, match="needs a /29"):
        TunAddresses.in_block("198.18.0.0/30")


def test_netem_arguments_use_netem_names() -> None:
    imp = Impairment(
        delay_ms=150,
        jitter_ms=10,
        distribution="normal",
        loss=0.01,
        duplicate=0.05,
        reorder=0.1,
        rate_kbit=4000,
        queue_limit=500,
    )
    assert netem_args(imp) == [
        "limit",
        "500",
        "delay",
        "150ms",
        "10ms",
        "distribution",
        "normal",
        "loss",
        "random",
        "1%",
        "duplicate",
        "5%",
        "reorder",
        "10%",
        "rate",
        "4000kbit",
    ]
    bursty = Impairment(gilbert_elliott=GilbertElliott(p=0.03, r=0.25, loss_bad=0.6))
    assert netem_args(bursty)[2:] == ["loss", "gemodel", "3%", "25%", "60%", "0%"]
    assert netem_args(Impairment(blackhole=True))[2:] == ["loss", "random", "100%"]


def test_netem_refuses_link_traces() -> None:
    with pytest.raises(NetemError, match="userspace backend only"):
        netem_args(Impairment(trace="handover-outage"))


def test_netem_splits_the_directions_by_destination() -> None:
    commands = [" ".join(c) for c in setup_commands("lvspk1", ADDRESSES)]
    assert "u32 match ip dst 198.18.0.10/32 flowid 1:1" in commands[1]
    assert "u32 match ip dst 198.18.0.11/32 flowid 1:2" in commands[3]
    assert change_command("lvspk1", DOWNSTREAM, Impairment(loss=0.2))[:10] == [
        "tc",
        "qdisc",
        "change",
        "dev",
        "lvspk1",
        "parent",
        "1:2",
        "handle",
        "20:",
        "netem",
    ]


def test_doctor_lists_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from harness.cli import main

    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [b["name"] for b in report["backends"]]
    assert names == [
        "toxiproxy (embedded)",
        "toxiproxy (real)",
        "frame proxy",
        "netem",
        "userspace",
    ]
    assert all(b["available"] or b["detail"] for b in report["backends"])
