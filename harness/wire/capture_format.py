"""Capture files: pcapng blocks written, pcap and pcapng read back down to TCP segments.

Writing gives `PcapWriter` the three pcapng blocks it needs: a section header,
one interface description per tap (named, so Wireshark shows `viewer_side:v1`
and `primary_side` as interfaces), and an enhanced packet block per packet.
They are little-endian whatever the host, so the same run gives the same
bytes everywhere.

Reading takes any capture an LVS peer's traffic may come in: classic pcap
(tcpdump's default; either byte order, micro- or nanosecond timestamps) and
pcapng (Wireshark's and dumpcap's; any number of sections and interfaces, each
with its own link type, timestamp resolution and offset), then finds the TCP
segment in each packet for the link types such captures use: Ethernet (VLAN
tags too), Linux cooked capture v1 and v2 (`tcpdump -i any`), raw IP, and BSD
loopback. Packets of other link types or protocols are not TCP to us and are
skipped. A file cut short while being written (a capture killed mid-packet)
is read up to its last whole packet.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

# --- writing -------------------------------------------------------------------

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 0x00000001
EPB_TYPE = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_END, _OPT_COMMENT = 0, 1
_SHB_USERAPPL = 4
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL = 2, 3, 9
NANOSECONDS = 9  # if_tsresol: 10**-9 s per timestamp unit

# type, total length, interface, timestamp high and low words, captured and original length
EPB_HEADER = struct.Struct("<IIIIIII")
BLOCK_LENGTH = struct.Struct("<I")
PADDING = tuple(b"\0" * n for n in range(4))  # by (-length) % 4


def _options(options: list[tuple[int, bytes]]) -> bytes:
    """pcapng options: code, length, value padded to 32 bits; then the end marker."""
    out = b"".join(
        struct.pack("<HH", code, len(value)) + value + PADDING[-len(value) % 4]
        for code, value in options
    )
    return out + struct.pack("<HH", _OPT_END, 0)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)  # bodies here are padded already
    return struct.pack("<II", block_type, total) + body + BLOCK_LENGTH.pack(total)


def section_header(application: str, comment: str) -> bytes:
    """A section header block: version 1.0, length unknown (-1), as a stream writer must."""
    body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _options(
        [(_OPT_COMMENT, comment.encode()), (_SHB_USERAPPL, application.encode())]
    )
    return _block(SHB_TYPE, body)


def interface_description(name: str, description: str, linktype: int, snaplen: int) -> bytes:
    """An interface description block with nanosecond timestamps."""
    body = struct.pack("<HHI", linktype, 0, snaplen) + _options(
        [
            (_IF_NAME, name.encode()),
            (_IF_DESCRIPTION, description.encode()),
            (_IF_TSRESOL, bytes([NANOSECONDS])),
        ]
    )
    return _block(IDB_TYPE, body)


@dataclass(frozen=True, slots=True)
class AppendPoint:
    """What a writer continuing a capture's last section must know of it."""

    interfaces: list[str]  # the section's interface names by number (unnamed: the number)
    reusable: set[str]  # names of interfaces as `interface_description` writes them
    comment: str  # the section header's comment ("" for none)


def append_point(path: str) -> AppendPoint | None:
    """The last section of a pcapng file to append to; None for a new or empty file.

    Raises `CaptureFormatError` unless the file is pcapng, ends where a block
    ends, and its last section is little-endian (the byte order written here).
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return None
    with handle:
        data = handle.read()
    if not data:
        return None
    if data[:4] != _SHB_BYTES:
        raise CaptureFormatError(f"{path} is not a pcapng file: cannot append to it")
    position, order, point = 0, "<", AppendPoint([], set(), "")
    while position + 12 <= len(data):
        if data[position : position + 4] == _SHB_BYTES:
            magic = struct.unpack_from("<I", data, position + 8)[0]
            order = "<" if magic == _BYTE_ORDER_MAGIC else ">"
        block_type, length = struct.unpack_from(order + "II", data, position)
        if length < 12 or length % 4 or position + length > len(data):
            break
        body = data[position + 8 : position + length - 4]
        if block_type == SHB_TYPE:
            options = _read_options(body, 16, order)
            point = AppendPoint([], set(), options.get(_OPT_COMMENT, b"").decode(errors="replace"))
        elif block_type == IDB_TYPE:
            interface = _interface(body, order, len(point.interfaces))
            point.interfaces.append(interface.name)
            if (interface.linktype, interface.units) == (1, 10**NANOSECONDS):
                point.reusable.add(interface.name)
        position += length
    if position != len(data):
        raise CaptureFormatError(f"{path} ends inside a block: cannot append to it")
    if order != "<":
        raise CaptureFormatError(f"{path} ends in a big-endian section: cannot append to it")
    return point


# --- reading -------------------------------------------------------------------


class CaptureFormatError(ValueError):
    """A file that is not a capture, or a capture that contradicts itself."""


@dataclass(frozen=True, slots=True)
class CapturedPacket:
    timestamp: float  # seconds since the Unix epoch
    interface: str  # pcapng: the interface's name, else its number; classic pcap: ""
    linktype: int
    data: bytes  # as captured: shorter than `length` when the snapshot length cut it
    length: int  # on the wire


@dataclass(frozen=True, slots=True)
class TcpSegment:
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    ack: int
    flags: int
    data: bytes
    cut: int  # payload bytes the capture did not keep (snapshot length)


TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_CLASSIC_MAGIC = {  # the first four bytes of the file: byte order, timestamp units per second
    bytes.fromhex("d4c3b2a1"): ("<", 1_000_000),
    bytes.fromhex("a1b2c3d4"): (">", 1_000_000),
    bytes.fromhex("4d3cb2a1"): ("<", 1_000_000_000),
    bytes.fromhex("a1b23c4d"): (">", 1_000_000_000),
}
_SHB_BYTES = struct.pack("<I", SHB_TYPE)  # a palindrome: the same in either byte order
_SPB_TYPE, _OBSOLETE_PB_TYPE = 3, 2
_IF_TSOFFSET = 14


def read_packets(path: str) -> Iterator[CapturedPacket]:
    """Every packet of a pcap or pcapng file, in file order."""
    with open(path, "rb") as handle:
        start = handle.read(4)
        if start == _SHB_BYTES:
            yield from _read_pcapng(handle, path)
        elif start in _CLASSIC_MAGIC:
            yield from _read_classic(handle, *_CLASSIC_MAGIC[start])
        else:
            begins = start.hex() or "nothing"
            raise CaptureFormatError(
                f"{path} is neither a pcap nor a pcapng file (it starts with {begins})"
            )


def _read_classic(handle: BinaryIO, order: str, units: int) -> Iterator[CapturedPacket]:
    header = handle.read(20)
    if len(header) < 20:
        return
    linktype = struct.unpack(order + "HHiIII", header)[5] & 0x0FFF_FFFF  # high bits: FCS info
    record = struct.Struct(order + "IIII")
    while len(head := handle.read(record.size)) == record.size:
        seconds, fraction, captured, length = record.unpack(head)
        data = handle.read(captured)
        if len(data) < captured:
            return
        yield CapturedPacket(seconds + fraction / units, "", linktype, data, length)


@dataclass(frozen=True, slots=True)
class _Interface:
    name: str
    linktype: int
    snaplen: int
    units: int  # timestamp units per second
    offset: int  # seconds added to every timestamp (if_tsoffset)


def _read_pcapng(handle: BinaryIO, path: str) -> Iterator[CapturedPacket]:
    handle.seek(0)
    order = "<"
    interfaces: list[_Interface] = []
    last_time = 0.0
    while len(head := handle.read(8)) == 8:
        if head[:4] == _SHB_BYTES:  # the same in either byte order: it sets the order
            magic = handle.read(4)
            if len(magic) < 4:
                return
            order = "<" if struct.unpack("<I", magic)[0] == _BYTE_ORDER_MAGIC else ">"
            if struct.unpack(order + "I", magic)[0] != _BYTE_ORDER_MAGIC:
                raise CaptureFormatError(f"{path}: a section header with no byte-order magic")
            length = struct.unpack_from(order + "I", head, 4)[0]
            if length < 28 or length % 4:
                raise CaptureFormatError(f"{path}: a section header of impossible length {length}")
            handle.seek(length - 12, 1)  # version, section length, options: nothing we need
            interfaces = []  # interface numbers start again in every section
            continue
        block_type, length = struct.unpack(order + "II", head)
        if length < 12 or length % 4:
            raise CaptureFormatError(f"{path}: a block of impossible length {length}")
        body = handle.read(length - 8)
        if len(body) < length - 8:
            return
        body = body[:-4]  # the block length, repeated
        if block_type == IDB_TYPE:
            interfaces.append(_interface(body, order, len(interfaces)))
            continue
        if block_type == EPB_TYPE:
            number, high, low, captured, original = struct.unpack_from(order + "IIIII", body)
            data = body[20 : 20 + captured]
        elif block_type == _OBSOLETE_PB_TYPE:
            number, _, high, low, captured, original = struct.unpack_from(order + "HHIIII", body)
            data = body[20 : 20 + captured]
        elif block_type == _SPB_TYPE:
            number, high, low = 0, -1, 0  # no timestamp: the previous packet's
            original = struct.unpack_from(order + "I", body)[0]
            data = body[4 : 4 + original]
        else:
            continue  # statistics, name resolution, comments: not packets
        if number >= len(interfaces):
            raise CaptureFormatError(
                f"{path}: a packet on interface {number}, which no interface block describes"
            )
        interface = interfaces[number]
        if interface.snaplen and block_type == _SPB_TYPE:
            data = data[: interface.snaplen]
        if high >= 0:
            last_time = ((high << 32) | low) / interface.units + interface.offset
        yield CapturedPacket(last_time, interface.name, interface.linktype, data, original)


def _read_options(body: bytes, position: int, order: str) -> dict[int, bytes]:
    """A block's options from `position` on (the last value of a repeated code)."""
    options: dict[int, bytes] = {}
    while position + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, position)
        if code == _OPT_END:
            break
        options[code] = body[position + 4 : position + 4 + size]
        position += 4 + size + (-size % 4)
    return options


def _interface(body: bytes, order: str, number: int) -> _Interface:
    linktype, _, snaplen = struct.unpack_from(order + "HHI", body)
    options = _read_options(body, 8, order)
    name = options[_IF_NAME].decode("utf-8", errors="replace") if _IF_NAME in options else ""
    units, offset = 1_000_000, 0
    if resolution := options.get(_IF_TSRESOL):
        exponent = resolution[0] & 0x7F
        units = 2**exponent if resolution[0] & 0x80 else 10**exponent
    if len(tsoffset := options.get(_IF_TSOFFSET, b"")) == 8:
        offset = struct.unpack(order + "q", tsoffset)[0]
    return _Interface(name or str(number), linktype, snaplen, units, offset)


# Link layers, by pcap link type: where the IP packet starts, and its ethertype.
_ETHERTYPE_IPV4, _ETHERTYPE_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = {0x8100, 0x88A8, 0x9100}
_BSD_AF_INET6 = {24, 28, 30}  # AF_INET6 differs between the BSDs (and macOS)


def _ethernet(data: bytes) -> tuple[int, int]:
    ethertype, start = int.from_bytes(data[12:14], "big"), 14
    while ethertype in _VLAN_TAGS:
        ethertype, start = int.from_bytes(data[start + 2 : start + 4], "big"), start + 4
    return ethertype, start


def _bsd_loopback(data: bytes) -> tuple[int, int]:
    # The address family in the capturing host's byte order (DLT_NULL) or big-endian (LOOP).
    families = {int.from_bytes(data[:4], "little"), int.from_bytes(data[:4], "big")}
    if 2 in families:
        return _ETHERTYPE_IPV4, 4
    return (_ETHERTYPE_IPV6, 4) if families & _BSD_AF_INET6 else (0, 4)


def _raw_ip(data: bytes) -> tuple[int, int]:
    version = data[0] >> 4 if data else 0
    return {4: _ETHERTYPE_IPV4, 6: _ETHERTYPE_IPV6}.get(version, 0), 0


def _linux_cooked(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[14:16], "big"), 16


def _linux_cooked_v2(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[0:2], "big"), 20


LINK_LAYERS = {
    0: _bsd_loopback,  # NULL
    1: _ethernet,  # EN10MB
    101: _raw_ip,  # RAW
    108: _bsd_loopback,  # LOOP (OpenBSD)
    113: _linux_cooked,  # LINUX_SLL
    228: _raw_ip,  # IPV4
    229: _raw_ip,  # IPV6
    276: _linux_cooked_v2,  # LINUX_SLL2
}
_IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: (n + 1) * 8 bytes
_IPV6_FRAGMENT, _IPV6_AUTHENTICATION = 44, 51
_IPPROTO_TCP = 6


def tcp_segment(packet: CapturedPacket) -> TcpSegment | None:
    """The TCP segment a packet carries; None for anything else (and for IP fragments)."""
    link = LINK_LAYERS.get(packet.linktype)
    data = packet.data
    if link is None or not data:
        return None
    ethertype, start = link(data)
    # `end`: where the IP packet ends on the wire, link-layer padding left out.
    if ethertype == _ETHERTYPE_IPV4 and len(data) >= start + 20:
        header_size = (data[start] & 0x0F) * 4
        total, fragment = struct.unpack_from("!HxxH", data, start + 2)
        if header_size < 20 or fragment & 0x3FFF or data[start + 9] != _IPPROTO_TCP:
            return None
        family, address_size, address_at = socket.AF_INET, 4, start + 12
        position = start + header_size
        # A total length of 0: a segmentation-offloaded packet longer than IPv4 allows.
        end = start + total if total else packet.length
    elif ethertype == _ETHERTYPE_IPV6 and len(data) >= start + 40:
        payload_size, next_header = struct.unpack_from("!HB", data, start + 4)
        family, address_size, address_at = socket.AF_INET6, 16, start + 8
        position = start + 40
        end = position + payload_size if payload_size else packet.length  # jumbogram
        while next_header != _IPPROTO_TCP and position + 2 <= len(data):
            if next_header in _IPV6_EXTENSIONS:
                next_header, position = data[position], position + (data[position + 1] + 1) * 8
            elif next_header == _IPV6_AUTHENTICATION:
                next_header, position = data[position], position + (data[position + 1] + 2) * 4
            else:
                return None  # a fragment, or not TCP
    else:
        return None
    if position + 20 > len(data):
        return None  # the TCP header itself was not captured
    sport, dport, seq, ack, offset, flags = struct.unpack_from("!HHIIBB", data, position)
    payload_start = position + (offset >> 4) * 4
    captured_end = min(end, len(data))
    payload = data[payload_start:captured_end]
    destination_at = address_at + address_size
    return TcpSegment(
        (socket.inet_ntop(family, data[address_at:destination_at]), sport),
        (socket.inet_ntop(family, data[destination_at : destination_at + address_size]), dport),
        seq,
        ack,
        flags,
        payload,
        max(0, end - max(captured_end, payload_start)),
    )
