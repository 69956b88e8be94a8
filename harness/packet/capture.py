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
