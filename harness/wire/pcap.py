"""TCP captures of LVS traffic: written from byte streams, read back into frames.

The harness sees each connection as two byte streams, not as packets. The
writer invents the TCP/IP packets around them (handshake, MSS-sized segments
with consistent sequence numbers, FIN exchange) so Wireshark can follow the
stream and scapy can dissect it with the LVS layer. The reader goes the other way for
any capture, ours or one taken from a real device: reassemble each direction
by sequence number, then decode with the reference `FrameDecoder`.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, NamedTuple

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapReader
from scapy.utils import PcapWriter as ScapyPcapWriter

from reference.protocol.errors import ErrorCode, RemoteProtocolError
from reference.protocol.frames import DEFAULT_PORT, HEADER_SIZE, Frame, FrameDecoder

Direction = Literal["c2s", "s2c"]
Endpoint = tuple[str, int]

MSS = 1460
_SEQ_MOD = 1 << 32
_CLIENT_MAC = "02:00:00:00:00:01"  # locally administered: never a real device's address
_SERVER_MAC = "02:00:00:00:00:02"
_WINDOW = 65535


def _other(direction: Direction) -> Direction:
    return "s2c" if direction == "c2s" else "c2s"


@dataclass
class _WrittenConnection:
    client: Endpoint
    server: Endpoint
    next_seq: dict[Direction, int]  # the sequence number each side sends next


class PcapWriter:
    """Synthesises the TCP/IP packets of connections and streams them to a pcap file.

    Packets are written (and flushed) as they are made: a soak of hours keeps
    only one small record per open connection in memory, and a run that dies
    still leaves a readable capture behind.
    """

    def __init__(self, path: str, *, append: bool = False) -> None:
        self.path = path
        # Ethernet rather than raw IP: every tool reads linktype 1, and IPv4
        # and IPv6 connections can share one file.
        self._pcap = ScapyPcapWriter(path, linktype=1, append=append, sync=True)
        self._connections: dict[Hashable, _WrittenConnection] = {}

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open_connection(
        self, conn_id: Hashable, client: Endpoint, server: Endpoint, t: float
    ) -> None:
        """The three-way handshake, all at time `t`."""
        if conn_id in self._connections:
            raise ValueError(f"connection {conn_id!r} is already open")
        if _ip_version(client[0]) != _ip_version(server[0]):
            raise ValueError(f"client {client[0]} and server {server[0]} differ in IP version")
        # Derived from the id, not random: the same run gives the same capture,
        # so two captures can be compared byte for byte.
        isn: dict[Direction, int] = {
            d: zlib.crc32(f"{conn_id!r}/{d}".encode()) for d in ("c2s", "s2c")
        }
        conn = _WrittenConnection(client, server, next_seq=isn)
        self._connections[conn_id] = conn
        self._emit(conn, "c2s", "S", t)
        self._emit(conn, "s2c", "SA", t)
        self._emit(conn, "c2s", "A", t)

    def write(self, conn_id: Hashable, direction: Direction, data: bytes, t: float) -> None:
        """`data` sent in one direction at time `t`, cut into segments of at most MSS bytes."""
        conn = self._open(conn_id)
        for start in range(0, len(data), MSS):
            self._emit(conn, direction, "PA", t, data[start : start + MSS])

    def close_connection(self, conn_id: Hashable, t: float, initiator: Direction = "c2s") -> None:
        """An orderly close: FIN from `initiator`, FIN back, last ACK."""
        conn = self._open(conn_id)
        self._emit(conn, initiator, "FA", t)
        self._emit(conn, _other(initiator), "FA", t)
        self._emit(conn, initiator, "A", t)
        del self._connections[conn_id]

    def reset_connection(self, conn_id: Hashable, t: float, sender: Direction = "s2c") -> None:
        """An abortive close (RST), as a proxy that resets the peer produces."""
        conn = self._open(conn_id)
        self._emit(conn, sender, "RA", t)
        del self._connections[conn_id]

    def close(self) -> None:
        self._pcap.close()

    def _open(self, conn_id: Hashable) -> _WrittenConnection:
        conn = self._connections.get(conn_id)
        if conn is None:
            raise KeyError(f"connection {conn_id!r} is not open")
        return conn

    def _emit(
        self,
        conn: _WrittenConnection,
        direction: Direction,
        flags: str,
        t: float,
        data: bytes = b"",
    ) -> None:
        src, dst, src_mac, dst_mac = conn.client, conn.server, _CLIENT_MAC, _SERVER_MAC
        if direction == "s2c":
            src, dst, src_mac, dst_mac = dst, src, dst_mac, src_mac
        network = IP if _ip_version(src[0]) == 4 else IPv6
        seq = conn.next_seq[direction]
        tcp = TCP(
            sport=src[1],
            dport=dst[1],
            seq=seq,
            ack=conn.next_seq[_other(direction)] if "A" in flags else 0,
            flags=flags,
            window=_WINDOW,
            options=[("MSS", MSS)] if "S" in flags else [],
        )
        packet = Ether(src=src_mac, dst=dst_mac) / network(src=src[0], dst=dst[0]) / tcp
        if data:
            packet = packet / Raw(data)
        # Rounded to the microseconds pcap keeps, so that scapy's own rounding
        # of the fraction can never carry into a whole extra second.
        packet.time = round(t, 6)
        self._pcap.write(packet)
        # SYN and FIN each use up one sequence number.
        used = len(data) + ("S" in flags) + ("F" in flags)
        conn.next_seq[direction] = (seq + used) % _SEQ_MOD


def _ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version


class CapturedFrame(NamedTuple):
    timestamp: float  # capture time of the segment that completed the frame
    direction: Direction
    frame: Frame


@dataclass(frozen=True, slots=True)
class StreamError:
    """Where decoding of one direction stopped; nothing after it was decoded."""

    direction: Direction
    timestamp: float
    offset: int  # in that direction's byte stream: the bad header, or the first missing byte
    code: ErrorCode | None  # None: the capture lost bytes, nobody broke the protocol
    message: str


@dataclass
class PcapConnection:
    client: Endpoint
    server: Endpoint
    frames: list[CapturedFrame] = field(default_factory=list)
    errors: list[StreamError] = field(default_factory=list)
    # Bytes of a frame still incomplete when the capture ended, per direction.
    unfinished: dict[Direction, int] = field(default_factory=dict)

    def frames_sent(self, direction: Direction) -> list[Frame]:
        return [c.frame for c in self.frames if c.direction == direction]


class _StreamReassembler:
    """One direction of one connection: segments in, frames out, in stream order."""

    def __init__(self, connection: PcapConnection, direction: Direction) -> None:
        self.connection = connection
        self.direction = direction
        self.base: int | None = None  # sequence number of stream offset 0
        self.next_offset = 0  # the first byte not yet handed to the decoder
        self.decoded = 0  # bytes of whole frames decoded: where the next header starts
        self.pending: dict[int, tuple[bytes, float]] = {}  # arrived ahead of a gap
        self.decoder = FrameDecoder()
        self.failed = False

    def syn(self, seq: int) -> None:
        if self.base is None:  # a retransmitted SYN must not move a stream under way
            self.base = (seq + 1) % _SEQ_MOD

    def segment(self, seq: int, data: bytes, t: float) -> None:
        if self.failed or not data:
            return
        if self.base is None:
            # The capture began mid-connection: the first byte seen is offset 0.
            self.base = seq
        offset = self._unwrap(seq)
        if offset + len(data) <= self.next_offset:
            return  # a retransmission of bytes already decoded
        if offset > self.next_offset:
            earlier = self.pending.get(offset)
            if earlier is None or len(earlier[0]) < len(data):
                self.pending[offset] = (data, t)
            return
        self._decode(data[self.next_offset - offset :], t)
        while self.pending and not self.failed:
            first = min(self.pending)
            if first > self.next_offset:
                break
            early, early_t = self.pending.pop(first)
            if first + len(early) > self.next_offset:
                # A receiver gets these bytes only now that the gap is filled.
                self._decode(early[self.next_offset - first :], max(early_t, t))

    def finish(self) -> None:
        if self.pending and not self.failed:
            first = min(self.pending)
            self._fail(
                None,
                f"{first - self.next_offset} bytes missing from the capture",
                self.pending[first][1],
                self.next_offset,
            )
        if not self.failed and self.next_offset > self.decoded:
            self.connection.unfinished[self.direction] = self.next_offset - self.decoded

    def _unwrap(self, seq: int) -> int:
        # Sequence numbers wrap at 2**32; take the offset nearest to where the
        # stream is now, so streams longer than 4 GiB still line up.
        assert self.base is not None
        relative = (seq - self.base - self.next_offset) % _SEQ_MOD
        if relative >= _SEQ_MOD // 2:
            relative -= _SEQ_MOD
        return self.next_offset + relative

    def _decode(self, data: bytes, t: float) -> None:
        self.next_offset += len(data)
        self.decoder.feed(data)
        try:
            while (frame := self.decoder.next_frame()) is not None:
                self.decoded += HEADER_SIZE + len(frame.payload)
                self.connection.frames.append(CapturedFrame(t, self.direction, frame))
        except RemoteProtocolError as exc:
            self._fail(exc.code, exc.message, t, self.decoded)

    def _fail(self, code: ErrorCode | None, message: str, t: float, offset: int) -> None:
        self.failed = True
        self.pending.clear()
        self.connection.errors.append(StreamError(self.direction, t, offset, code, message))


@dataclass
class _ReadConnection:
    result: PcapConnection
    streams: dict[Direction, _StreamReassembler]
    syn_seq: int | None = None

    def finish(self) -> None:
        for stream in self.streams.values():
            stream.finish()


def read_pcap_streams(path: str, ports: Collection[int] | None = None) -> list[PcapConnection]:
    """Every TCP connection in the capture, in order of first packet, decoded into frames.

    `ports` keeps only connections with one end on one of those ports. A
    capture that starts mid-connection is read from its first byte; which end
    is the server is then guessed from the port (DEFAULT_PORT or `ports`).
    """
    server_ports = {DEFAULT_PORT, *(ports or ())}
    live: dict[frozenset[Endpoint], _ReadConnection] = {}
    found: list[PcapConnection] = []
    with PcapReader(path) as reader:
        for packet in reader:
            segment = _tcp_segment(packet)
            if segment is None:
                continue
            src, dst, tcp, data = segment
            if ports is not None and src[1] not in ports and dst[1] not in ports:
                continue
            key = frozenset((src, dst))
            flags = str(tcp.flags)
            conn = live.get(key)
            is_new_syn = "S" in flags and "A" not in flags
            # A fresh SYN on a known address pair is a new connection (port
            # reuse), unless it retransmits the SYN that opened this one.
            if conn is None or (is_new_syn and conn.syn_seq != tcp.seq):
                if conn is not None:
                    conn.finish()
                conn = _start_connection(src, dst, flags, server_ports)
                live[key] = conn
                found.append(conn.result)
            direction: Direction = "c2s" if src == conn.result.client else "s2c"
            stream = conn.streams[direction]
            t = float(packet.time)
            if "S" in flags:
                if is_new_syn:
                    conn.syn_seq = tcp.seq
                stream.syn(tcp.seq)
                continue
            stream.segment(tcp.seq, data, t)
    for conn in live.values():
        conn.finish()
    return found


def _start_connection(
    src: Endpoint, dst: Endpoint, flags: str, server_ports: set[int]
) -> _ReadConnection:
    if "S" in flags:
        client, server = (dst, src) if "A" in flags else (src, dst)
    elif src[1] in server_ports and dst[1] not in server_ports:
        client, server = dst, src
    else:
        client, server = src, dst
    result = PcapConnection(client, server)
    return _ReadConnection(result, {d: _StreamReassembler(result, d) for d in ("c2s", "s2c")})


def _tcp_segment(packet: Packet) -> tuple[Endpoint, Endpoint, TCP, bytes] | None:
    network = packet.getlayer(IP)
    if network is None:
        network = packet.getlayer(IPv6)
    if network is None or not packet.haslayer(TCP):
        return None
    tcp = packet[TCP]
    # `original` is the segment exactly as captured, link-layer padding
    # already cut off by the IP length; rebuilding the dissected LVS layers
    # could not be trusted to give back bytes that a device got wrong.
    data = bytes(tcp.original[tcp.dataofs * 4 :])
    return (network.src, tcp.sport), (network.dst, tcp.dport), tcp, data
