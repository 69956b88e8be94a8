"""The impairer's own pcap: every IPv4 packet the senders put on the impaired link.

Packets are written as they enter the hop, before any loss, so a TCP
retransmission shows up as the same sequence range sent twice (tshark:
`tcp.analysis.retransmission`). Both directions are written with the
addresses the Primary side sees (viewer .3 <-> local .1), so each connection
reads as one flow. Link type 101 (LINKTYPE_RAW): no Ethernet header.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO

LINKTYPE_RAW = 101
SNAPLEN = 65535


class PacketCapture:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file: BinaryIO = open(path, "wb", buffering=1 << 20)  # noqa: SIM115
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW))
        self.packets = 0

    def write(self, packet: bytes | bytearray, t: float | None = None) -> None:
        stamp = time.time() if t is None else t
        seconds = int(stamp)
        micros = int((stamp - seconds) * 1_000_000)
        size = len(packet)
        self.file.write(struct.pack("<IIII", seconds, micros, size, size))
        self.file.write(packet)
        self.packets += 1

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


def retransmitted_segments(path: str) -> int:
    """TCP segments (payload, SYN or FIN) that begin within what the flow already sent.

    The same test tshark's `tcp.analysis.retransmission` starts from, done here
    so a run can report retransmissions on machines without tshark.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    highest: dict[bytes, int] = {}  # flow -> highest sequence end, relative to its first seq
    first: dict[bytes, int] = {}
    count, at = 0, 24
    while at + 16 <= len(data):
        size = struct.unpack_from("<I", data, at + 8)[0]
        packet = data[at + 16 : at + 16 + size]
        at += 16 + size
        if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != 6:
            continue
        header = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        offset = (packet[header + 12] >> 4) * 4
        payload = total - header - offset
        flow = packet[12:20] + packet[header : header + 4]
        seq = struct.unpack_from("!I", packet, header + 4)[0]
        start = (seq - first.setdefault(flow, seq)) % (1 << 32)
        flags = packet[header + 13]
        # SYN and FIN take one sequence number each: a resent FIN is a retransmission too.
        length = payload + (flags & 0x01) + ((flags >> 1) & 0x01)
        if length <= 0:
            continue
        end = start + length
        sent = highest.get(flow, 0)
        if start < sent:
            # Wireshark's test too: it begins before the next byte expected, so some of it
            # was sent already (a resend may carry new bytes after the old ones).
            count += 1
        highest[flow] = max(sent, end)
    return count
