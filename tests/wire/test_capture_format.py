"""Captures as other tools write them: pcap and pcapng, any byte order, several link types.

The packets of the writer's own capture are rewrapped the ways tcpdump,
dumpcap and Wireshark store them (classic pcap in either byte order with
micro- or nanosecond stamps; pcapng with several sections and interfaces,
other timestamp resolutions and offsets; Ethernet with a VLAN tag, Linux
cooked v1 and v2, raw IP, BSD loopback), and must read back as the same
frames at the same times.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.wire.capture_format import (
    CapturedPacket,
    CaptureFormatError,
    read_packets,
)
from harness.wire.pcap import PcapWriter, read_pcap_streams
from reference.protocol.frames import Frame, FrameType, encode_frame
from tests.wire.test_pcap import BIG_KEYFRAME, ENDPOINTS, HELLO, MSS, sent, write_capture

Wrap = Callable[[bytes], tuple[int, bytes]]  # an Ethernet frame -> link type, frame as stored


def ethernet(frame: bytes) -> tuple[int, bytes]:
    return 1, frame


def vlan_tagged(frame: bytes) -> tuple[int, bytes]:
    return 1, frame[:12] + bytes.fromhex("8100 0005") + frame[12:]


def linux_cooked(frame: bytes) -> tuple[int, bytes]:
    # packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8, protocol
    return 113, struct.pack("!HHH8s", 0, 1, 6, frame[6:12]) + frame[12:]


def linux_cooked_v2(frame: bytes) -> tuple[int, bytes]:
    # protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address
    return 276, frame[12:14] + struct.pack("!HIHBB8s", 0, 1, 1, 0, 6, frame[6:12]) + frame[14:]


def raw_ip(frame: bytes) -> tuple[int, bytes]:
    return 101, frame[14:]


def bsd_null(frame: bytes) -> tuple[int, bytes]:
    family = 2 if frame[12:14] == b"\x08\x00" else 30  # AF_INET; AF_INET6 on macOS
    return 0, struct.pack("<I", family) + frame[14:]


def openbsd_loop(frame: bytes) -> tuple[int, bytes]:
    family = 2 if frame[12:14] == b"\x08\x00" else 24  # AF_INET6 on OpenBSD
    return 108, struct.pack(">I", family) + frame[14:]


LINKS: dict[str, Wrap] = {
    "ethernet": ethernet,
    "vlan": vlan_tagged,
    "sll": linux_cooked,
    "sll2": linux_cooked_v2,
    "raw": raw_ip,
    "null": bsd_null,
    "loop": openbsd_loop,
}


def classic_pcap(
    path: Path, packets: list[CapturedPacket], wrap: Wrap, order: str, nanos: bool
) -> None:
    units = 10**9 if nanos else 10**6
    linktype = wrap(packets[0].data)[0]
    out = [struct.pack(order + "IHHiIII", 0xA1B23C4D if nanos else 0xA1B2C3D4, 2, 4, 0, 0,
                       262_144, linktype)]  # fmt: skip
    for packet in packets:
        _, data = wrap(packet.data)
        seconds, fraction = divmod(round(packet.timestamp * units), units)
        out.append(struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data)
    path.write_bytes(b"".join(out))


def block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return (
        struct.pack(order + "II", block_type, len(body) + 12)
        + body
        + struct.pack(order + "I", len(body) + 12)
    )


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def section(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(order: str, linktype: int, name: str, tsresol: int, tsoffset: int) -> bytes:
    options = option(order, 2, name.encode()) + option(order, 9, bytes([tsresol]))
    if tsoffset:
        options += option(order, 14, struct.pack(order + "q", tsoffset))
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + options + bytes(4))


def packet_block(
    order: str, number: int, units: float, offset: int, data: bytes, t: float
) -> bytes:
    ticks = round((t - offset) * units)
    return block(order, 6, struct.pack(order + "IIIII", number, ticks >> 32, ticks & 0xFFFFFFFF,
                                       len(data), len(data)) + data)  # fmt: skip


def two_sections(path: Path, packets: list[CapturedPacket]) -> None:
    """Little-endian section: Ethernet and raw IP interfaces in microseconds, plus a
    statistics block to skip; big-endian section: Linux cooked v2 with 2**-20 s ticks
    counted from an offset of 1.6e9 s. Connection "a" goes by one interface, "b" by another."""
    half = len(packets) // 2
    out = [section("<"), interface("<", 1, "eth0", 6, 0), interface("<", 101, "tun0", 6, 0)]
    for packet in packets[:half]:
        is_b = packet.data[12:14] == b"\x86\xdd"
        _, data = (raw_ip if is_b else ethernet)(packet.data)
        out.append(packet_block("<", int(is_b), 1e6, 0, data, packet.timestamp))
        out.append(block("<", 5, struct.pack("<III", 0, 0, 0)))  # interface statistics
    out += [section(">"), interface(">", 276, "any", 0x80 | 20, 1_600_000_000)]
    for packet in packets[half:]:
        _, data = linux_cooked_v2(packet.data)
        out.append(packet_block(">", 0, 2**20, 1_600_000_000, data, packet.timestamp))
    path.write_bytes(b"".join(out))


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, list[CapturedPacket]]:
    path = tmp_path / "original.pcapng"
    write_capture(path)
    return path, list(read_packets(str(path)))


def assert_same_streams(path: Path, original: Path, tolerance: float) -> None:
    expected = read_pcap_streams(str(original))
    got = read_pcap_streams(str(path))
    assert [(c.client, c.server) for c in got] == [ENDPOINTS["a"], ENDPOINTS["b"]]
    for conn, read, before in zip("ab", got, expected, strict=True):
        assert read.errors == [] and read.unfinished == {}
        assert read.frames == [
            c._replace(timestamp=pytest.approx(c.timestamp, abs=tolerance)) for c in before.frames
        ]
        for direction in ("c2s", "s2c"):
            assert read.frames_sent(direction) == [f for _, f in sent(conn, direction)]


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize(("order", "nanos"), [("<", False), (">", False), ("<", True), (">", True)])
def test_classic_pcap_of_any_link_type_byte_order_and_resolution(
    original: tuple[Path, list[CapturedPacket]], tmp_path: Path, link: str, order: str, nanos: bool
) -> None:
    path = tmp_path / "converted.pcap"
    classic_pcap(path, original[1], LINKS[link], order, nanos)
    assert_same_streams(path, original[0], tolerance=5e-7 if not nanos else 2e-7)


def test_pcapng_with_sections_interfaces_resolutions_and_offsets(
    original: tuple[Path, list[CapturedPacket]], tmp_path: Path
) -> None:
    path = tmp_path / "sections.pcapng"
    two_sections(path, original[1])
    assert {p.interface for p in read_packets(str(path))} == {"eth0", "tun0", "any"}
    assert_same_streams(path, original[0], tolerance=2**-20)


def test_bytes_cut_by_the_snapshot_length_are_reported_missing(
    original: tuple[Path, list[CapturedPacket]], tmp_path: Path
) -> None:
    """The keyframe's last segment kept only its headers and 10 bytes: a gap, not a frame."""
    path = tmp_path / "snaplen.pcap"
    _, packets = original
    last = max(i for i, p in enumerate(packets) if len(p.data) == 14 + 20 + 20 + MSS) + 1
    cut = packets[last]
    assert len(cut.data) > 14 + 20 + 20 + 10
    packets[last] = CapturedPacket(
        cut.timestamp, "", 1, cut.data[: 14 + 20 + 20 + 10], len(cut.data)
    )
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 64, 1)]
    for p in packets:
        seconds, micros = divmod(round(p.timestamp * 1e6), 10**6)
        out.append(struct.pack("<IIII", seconds, micros, len(p.data), p.length) + p.data)
    path.write_bytes(b"".join(out))
    a, _ = read_pcap_streams(str(path))
    (gap,) = a.errors
    assert gap.code is None and gap.direction == "s2c"
    assert gap.message.startswith(f"{len(cut.data) - 14 - 40 - 10} bytes missing from the capture")
    assert BIG_KEYFRAME not in a.frames_sent("s2c")
    assert a.unfinished == {}


def test_a_file_that_is_no_capture_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a capture\n")
    with pytest.raises(CaptureFormatError, match=r"notes.txt is neither a pcap nor a pcapng file"):
        read_pcap_streams(str(path))


def test_a_capture_cut_inside_a_packet_is_read_to_its_last_whole_packet(
    original: tuple[Path, list[CapturedPacket]], tmp_path: Path
) -> None:
    path = tmp_path / "killed.pcapng"
    data = original[0].read_bytes()
    path.write_bytes(data[: len(data) - 7])  # as if the capturing program was killed mid-write
    assert len(list(read_packets(str(path)))) == len(original[1]) - 1


def test_timestamps_are_wall_clock_time_from_the_monotonic_clock(tmp_path: Path) -> None:
    path = tmp_path / "now.pcapng"
    before = time.time()
    with PcapWriter(str(path)) as writer:  # the default: `t` is the trace's CLOCK_MONOTONIC
        writer.open_connection("a", *ENDPOINTS["a"], t=time.monotonic(), interface="viewer_side:v1")
        writer.write("a", "c2s", encode_frame(HELLO), time.monotonic())
    after = time.time()
    packets = list(read_packets(str(path)))
    assert {p.interface for p in packets} == {"viewer_side:v1"}
    # The anchor is read when the writer opens: within the time the test took.
    assert all(before <= p.timestamp <= after for p in packets)
    assert writer.wall_clock_offset == pytest.approx(time.time() - time.monotonic(), abs=0.5)


def test_taps_each_get_their_interface_in_first_use_order(tmp_path: Path) -> None:
    path = tmp_path / "taps.pcapng"
    video = encode_frame(Frame(FrameType.VIDEO, b"x" * 100, 1, 1, 0))
    with PcapWriter(str(path), wall_clock_offset=0) as writer:
        for number, tap in enumerate(["primary_side", "viewer_side:v1", "viewer_side:v2"]):
            client = ("127.0.0.1", 40_000 + number)
            writer.open_connection(tap, client, ("127.0.0.1", 7450), 10.0 + number, tap)
            writer.write(tap, "s2c", video, 10.5 + number)
    assert [c.interface for c in read_pcap_streams(str(path))] == [
        "primary_side", "viewer_side:v1", "viewer_side:v2"
    ]  # fmt: skip
    assert [p.timestamp for p in read_packets(str(path))][::4] == [10.0, 11.0, 12.0]
