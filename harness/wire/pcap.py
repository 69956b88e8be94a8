"""TCP captures of LVS traffic: written from byte streams, read back into frames.

The harness sees each connection as two byte streams, not as packets. The
writer invents the TCP/IP packets around them (handshake, MSS-sized segments
with consistent sequence numbers, FIN exchange) so Wireshark can follow the
stream and dissect it with `lvs.lua` (scapy with the LVS layer can too). The
reader goes the other way for any capture, ours or one taken from a real
device: reassemble each direction by sequence number, then decode with the
reference `FrameDecoder`.

Captures are pcapng: one named interface per tap (`viewer_side:v1`,
`primary_side`), so a connection's interface says where it was seen, and
wall-clock timestamps. The trace's `t` is the host's CLOCK_MONOTONIC; the
writer reads both clocks once when it opens and adds the difference to every
`t`, so a packet's time minus `wall_clock_offset` is the trace's `t` of the
same bytes, to the nanosecond, and a clock step during the run cannot tear
the capture apart.

The writer is in the data path of every wire tap, so it does not use scapy:
it packs the pcapng blocks (`capture_format`) and the Ethernet, IPv4/IPv6 and
TCP headers itself with `struct`, checksums included, and buffers whole
records in memory between writes to the file (see `PcapWriter` for when they
reach it).
"""

from __future__ import annotations

import ipaddress
import re
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, NamedTuple

from harness.wire.capture_format import (
    BLOCK_LENGTH,
    EPB_HEADER,
    EPB_TYPE,
    PADDING,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    AppendPoint,
    CaptureFormatError,
    append_point,
    interface_description,
    read_packets,
    section_header,
    tcp_segment,
)
from reference.protocol.errors import ErrorCode, RemoteProtocolError
from reference.protocol.frames import DEFAULT_PORT, HEADER_SIZE, Frame, FrameDecoder

Direction = Literal["c2s", "s2c"]
Endpoint = tuple[str, int]

# Segment sizes: what a 1500-byte Ethernet MTU carries, and what Linux loopback
# (MTU 65536, TCP timestamps on) carries. The harness captures loopback traffic,
# so the default is loopback-sized (a 64 KiB read is one or two packets, not 45),
# trimmed so that even an IPv6 packet with its Ethernet header fits in the 65535
# bytes scapy's rdpcap reads of a packet by default (it cuts longer ones short;
# `read_pcap_streams` does not).
ETHERNET_MSS = 1460
LOOPBACK_MSS = 65483
DEFAULT_MSS = 65535 - 14 - 40 - 20  # 65461
MAX_MSS = 65535 - 20 - 20  # the IPv4 total length field is 16 bits

# When buffered records reach the file (see `PcapWriter`).
FLUSH_INTERVAL = 0.2  # seconds
FLUSH_BYTES = 1 << 20

_SEQ_MOD = 1 << 32
_CLIENT_MAC = bytes.fromhex("020000000001")  # locally administered: never a real device's
_SERVER_MAC = bytes.fromhex("020000000002")
_WINDOW = 65535
_TTL = 64

# Every interface is Ethernet (rather than raw IP: every tool reads it, and
# IPv4 and IPv6 connections can share one interface) with tcpdump's default
# snapshot length, which must exceed the largest packet (Ethernet + IP + TCP + MSS).
DEFAULT_INTERFACE = "lvs"
_LINKTYPE_ETHERNET = 1
_SNAPLEN = 262_144
_INTERFACE_DESCRIPTION = (
    "LVS wire tap: the bytes as relayed; Ethernet, IP and TCP headers synthesised"
)
_APPLICATION = "LVS conformance harness (harness.wire.pcap)"
_ETHERTYPE = {4: 0x0800, 6: 0x86DD}
_IPV4 = struct.Struct("!BBHHHBBH4s4s")  # version+IHL, TOS, length, id, flags+frag, TTL, proto, sum
_IPV6 = struct.Struct("!IHBB16s16s")  # version+class+flow, payload length, next header, hops
_TCP = struct.Struct("!HHIIBBHHH")  # ports, seq, ack, data offset, flags, window, sum, urgent
_IPPROTO_TCP = 6
_DONT_FRAGMENT = 0x4000

_FIN, _SYN, _RST, _ACK = TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK
_PSH = 0x08


def _other(direction: Direction) -> Direction:
    return "s2c" if direction == "c2s" else "c2s"


def _word_sum(data: bytes | memoryview) -> int:
    """The sum of `data`'s big-endian 16-bit words modulo 0xFFFF (odd length: zero-padded).

    The Internet checksum is this sum in ones' complement. As 2**16 = 1 modulo
    0xFFFF, a number is congruent to the sum of its 16-bit digits, and to the
    sum of its halves cut at any multiple of 16 bits: a few big-integer
    operations in C instead of a loop over 32k words for a 64 KiB segment.
    (Halving is twice as fast as `% 0xFFFF` on the whole number.)
    """
    value = int.from_bytes(data, "big")
    if len(data) % 2:
        value <<= 8
    bits = value.bit_length()
    while bits > 64:
        half = (bits + 31) // 32 * 16
        value = (value >> half) + (value & ((1 << half) - 1))
        bits = value.bit_length()
    return value % 0xFFFF


def _checksum(word_sum: int) -> int:
    """The Internet checksum of data whose `_word_sum`s add up to `word_sum` (never all zero)."""
    # A ones' complement sum of non-zero data is 0xFFFF, never 0, when it is 0 modulo 0xFFFF.
    return 0xFFFF - (word_sum % 0xFFFF or 0xFFFF)


@dataclass(slots=True)
class _Sender:
    """One side of a written connection: its headers' fixed parts, and its next sequence number."""

    ip_version: int
    ethernet: bytes  # destination and source MAC, ethertype
    source: bytes  # packed addresses
    destination: bytes
    sport: int
    dport: int
    next_seq: int
    pseudo_header_sum: int  # the TCP pseudo-header without the length, as a `_word_sum`
    ipv4_sum: int  # the IPv4 header without length and checksum, as a `_word_sum`

    @classmethod
    def between(
        cls, src: Endpoint, dst: Endpoint, src_mac: bytes, dst_mac: bytes, isn: int
    ) -> _Sender:
        source, destination = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
        version = source.version
        addresses = source.packed + destination.packed
        ipv4_sum = 0
        if version == 4:
            ipv4_sum = _word_sum(
                _IPV4.pack(
                    0x45,
                    0,
                    0,
                    0,
                    _DONT_FRAGMENT,
                    _TTL,
                    _IPPROTO_TCP,
                    0,
                    source.packed,
                    destination.packed,
                )
            )
        return cls(
            ip_version=version,
            ethernet=dst_mac + src_mac + _ETHERTYPE[version].to_bytes(2, "big"),
            source=source.packed,
            destination=destination.packed,
            sport=src[1],
            dport=dst[1],
            next_seq=isn,
            pseudo_header_sum=_word_sum(addresses) + _IPPROTO_TCP,
            ipv4_sum=ipv4_sum,
        )


@dataclass
class _WrittenConnection:
    senders: dict[Direction, _Sender]
    interface: int  # its number in the capture


def wall_clock_offset_now() -> float:
    """Wall-clock time minus CLOCK_MONOTONIC, read once: the anchor of a capture's timestamps."""
    before = time.monotonic_ns()
    wall = time.time_ns()
    after = time.monotonic_ns()
    return (wall - (before + after) // 2) / 1e9


class PcapWriter:
    """Synthesises the TCP/IP packets of connections and streams them to a pcapng file.

    Only one small record per open connection stays in memory, so a soak of
    hours can be captured. Packets are buffered, whole, and reach the file (in
    one write, so the file always ends on a packet boundary):

    * when `flush_bytes` are buffered;
    * on the first write at least `flush_interval` seconds after the last
      flush, and from a background thread every `flush_interval` seconds, so
      that the last packets of a run that stops, hangs or is killed are in the
      file too;
    * on `flush()` and `close()` (also when the writer is garbage collected or
      the interpreter exits without closing it).

    A process that dies loses at most the last `flush_interval` seconds, and
    the file stays readable; `flush_interval=0` writes on every call. Nothing
    is fsync'ed: the packets are safe from a crash of the run, not of the
    machine. Segments are at most `mss` bytes (`DEFAULT_MSS`: loopback-sized).

    Each connection is on a named interface (`open_connection(interface=)`),
    described in the file when first used. Times `t` are the trace's
    (CLOCK_MONOTONIC); `wall_clock_offset` is added to them, by default the
    difference of the two clocks when the writer opens (0: `t` is already
    wall-clock time). Timestamps have nanosecond resolution.

    `append=True` continues the last section of an existing pcapng file: its
    interfaces of the same names, and its clock anchor (CLOCK_MONOTONIC is
    the host's, shared by every process until a reboot), so Wireshark sees
    one capture.

    Each connection must be driven from one thread at a time; the file itself
    may be shared by threads.
    """

    def __init__(
        self,
        path: str,
        *,
        append: bool = False,
        mss: int = DEFAULT_MSS,
        flush_interval: float = FLUSH_INTERVAL,
        flush_bytes: int = FLUSH_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_offset: float | None = None,
    ) -> None:
        if not 1 <= mss <= MAX_MSS:
            raise ValueError(f"MSS {mss} is not between 1 and {MAX_MSS}")
        self.path = path
        self.mss = mss
        point = append_point(path) if append else None
        anchored = _anchor_in(point.comment) if point is not None else None
        if wall_clock_offset is None:
            wall_clock_offset = wall_clock_offset_now() if anchored is None else anchored
        elif anchored is not None and round(anchored * 1e9) != round(wall_clock_offset * 1e9):
            raise ValueError(
                f"{path} has timestamps CLOCK_MONOTONIC + {anchored:.9f} s: "
                f"cannot append with + {wall_clock_offset:.9f} s"
            )
        self.wall_clock_offset = wall_clock_offset
        self._offset_ns = round(wall_clock_offset * 1e9)
        self._syn_options = struct.pack("!BBH", 2, 4, mss)  # kind 2: MSS, 4 bytes long
        comment = f"{_ANCHOR_TEXT} + {wall_clock_offset:.9f} s"
        self._file = _CaptureFile(path, append, point, flush_interval, flush_bytes, clock, comment)
        self._connections: dict[Hashable, _WrittenConnection] = {}
        # Like a file object: flushed and closed when dropped without close().
        self._finalizer = weakref.finalize(self, self._file.close)

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
        self,
        conn_id: Hashable,
        client: Endpoint,
        server: Endpoint,
        t: float,
        interface: str = DEFAULT_INTERFACE,
    ) -> None:
        """The three-way handshake, all at time `t`, on the interface named `interface`."""
        if conn_id in self._connections:
            raise ValueError(f"connection {conn_id!r} is already open")
        if _ip_version(client[0]) != _ip_version(server[0]):
            raise ValueError(f"client {client[0]} and server {server[0]} differ in IP version")
        # Derived from the id, not random: the same run gives the same capture,
        # so two captures can be compared byte for byte.
        isn: dict[Direction, int] = {
            d: zlib.crc32(f"{conn_id!r}/{d}".encode()) for d in ("c2s", "s2c")
        }
        conn = _WrittenConnection(
            {
                "c2s": _Sender.between(client, server, _CLIENT_MAC, _SERVER_MAC, isn["c2s"]),
                "s2c": _Sender.between(server, client, _SERVER_MAC, _CLIENT_MAC, isn["s2c"]),
            },
            self._file.interface(interface),
        )
        self._connections[conn_id] = conn
        self._emit(conn, t, ("c2s", _SYN), ("s2c", _SYN | _ACK), ("c2s", _ACK))

    def write(
        self,
        conn_id: Hashable,
        direction: Direction,
        data: bytes | bytearray | memoryview,
        t: float,
    ) -> None:
        """`data` sent in one direction at time `t`, cut into segments of at most `mss` bytes."""
        conn = self._open(conn_id)
        if not data:
            return
        # Segments are views of `data` until written out: an immutable copy of
        # a caller's buffer, which may change (or be unable to while viewed).
        view = memoryview(data if isinstance(data, bytes) else bytes(data))
        sender, receiver = conn.senders[direction], conn.senders[_other(direction)]
        stamp = self._timestamp(t)
        records: list[bytes | memoryview] = []
        for start in range(0, len(view), self.mss):
            segment = view[start : start + self.mss]
            records += self._packet(conn, sender, receiver, _PSH | _ACK, stamp, segment)
        self._file.add(records)

    def close_connection(self, conn_id: Hashable, t: float, initiator: Direction = "c2s") -> None:
        """An orderly close: FIN from `initiator`, FIN back, last ACK."""
        conn = self._open(conn_id)
        fin = _FIN | _ACK
        self._emit(conn, t, (initiator, fin), (_other(initiator), fin), (initiator, _ACK))
        del self._connections[conn_id]

    def reset_connection(self, conn_id: Hashable, t: float, sender: Direction = "s2c") -> None:
        """An abortive close (RST), as a proxy that resets the peer produces."""
        conn = self._open(conn_id)
        self._emit(conn, t, (sender, _RST | _ACK))
        del self._connections[conn_id]

    def flush(self) -> None:
        """Every packet so far into the file now (not fsync'ed)."""
        self._file.flush()

    def close(self) -> None:
        self._finalizer()

    def _open(self, conn_id: Hashable) -> _WrittenConnection:
        conn = self._connections.get(conn_id)
        if conn is None:
            raise KeyError(f"connection {conn_id!r} is not open")
        return conn

    def _emit(self, conn: _WrittenConnection, t: float, *packets: tuple[Direction, int]) -> None:
        """Packets without data (handshake, close), written together."""
        stamp = self._timestamp(t)
        records: list[bytes | memoryview] = []
        for direction, flags in packets:
            sender, receiver = conn.senders[direction], conn.senders[_other(direction)]
            records += self._packet(conn, sender, receiver, flags, stamp)
        self._file.add(records)

    def _timestamp(self, t: float) -> tuple[int, int]:
        """Wall-clock nanoseconds as pcapng wants them: the high and the low 32 bits."""
        ns = round(t * 1e9) + self._offset_ns
        return ns >> 32, ns & 0xFFFF_FFFF

    def _packet(
        self,
        conn: _WrittenConnection,
        sender: _Sender,
        receiver: _Sender,
        flags: int,
        stamp: tuple[int, int],
        data: bytes | memoryview = b"",
    ) -> tuple[bytes, bytes | memoryview, bytes]:
        """The packet block of one packet: headers, `data` itself (not copied), the block's end."""
        seq = sender.next_seq
        ack = receiver.next_seq if flags & _ACK else 0
        options = self._syn_options if flags & _SYN else b""
        header_size = 20 + len(options)
        tcp_size = header_size + len(data)
        data_offset = (header_size // 4) << 4
        tcp_sum = (
            sender.pseudo_header_sum
            + tcp_size
            + _word_sum(
                _TCP.pack(sender.sport, sender.dport, seq, ack, data_offset, flags, _WINDOW, 0, 0)
            )
            + _word_sum(options)
            + _word_sum(data)
        )
        tcp = (
            _TCP.pack(
                sender.sport,
                sender.dport,
                seq,
                ack,
                data_offset,
                flags,
                _WINDOW,
                _checksum(tcp_sum),
                0,
            )
            + options
        )
        if sender.ip_version == 4:
            length = 20 + tcp_size
            ip = _IPV4.pack(
                0x45,
                0,
                length,
                0,
                _DONT_FRAGMENT,
                _TTL,
                _IPPROTO_TCP,
                _checksum(sender.ipv4_sum + length),
                sender.source,
                sender.destination,
            )
        else:
            ip = _IPV6.pack(
                0x6000_0000, tcp_size, _IPPROTO_TCP, _TTL, sender.source, sender.destination
            )
        size = 14 + len(ip) + tcp_size
        padding = -size % 4
        total = EPB_HEADER.size + size + padding + BLOCK_LENGTH.size
        block = EPB_HEADER.pack(EPB_TYPE, total, conn.interface, stamp[0], stamp[1], size, size)
        # SYN and FIN each use up one sequence number.
        used = len(data) + (flags & _SYN != 0) + (flags & _FIN != 0)
        sender.next_seq = (seq + used) % _SEQ_MOD
        return block + sender.ethernet + ip + tcp, data, PADDING[padding] + BLOCK_LENGTH.pack(total)


class _CaptureFile:
    """The pcapng file, the records not yet in it, and when they go in (see `PcapWriter`)."""

    def __init__(
        self,
        path: str,
        append: bool,
        point: AppendPoint | None,
        flush_interval: float,
        flush_bytes: int,
        clock: Callable[[], float],
        comment: str,
    ) -> None:
        self._file = open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115
        self._interfaces: dict[str, int] = {}
        self._interface_count = 0
        if point is None:
            self._file.write(section_header(_APPLICATION, comment))
        else:
            self._interface_count = len(point.interfaces)
            for number, name in enumerate(point.interfaces):
                if name in point.reusable:
                    self._interfaces[name] = number
        self._flush_interval = flush_interval
        self._flush_bytes = flush_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._records: list[bytes | memoryview] = []
        self._buffered = 0
        self._last_flush = clock()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval > 0:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name=f"pcap flush {path}", daemon=True
            )
            self._flusher.start()

    def interface(self, name: str) -> int:
        """The number of the interface `name`, its description block queued on first use."""
        with self._lock:
            number = self._interfaces.get(name)
            if number is None:
                number = self._interfaces[name] = self._interface_count
                self._interface_count += 1
                self._records.append(
                    interface_description(
                        name, _INTERFACE_DESCRIPTION, _LINKTYPE_ETHERNET, _SNAPLEN
                    )
                )
            return number

    def add(self, records: list[bytes | memoryview]) -> None:
        with self._lock:
            if self._closed.is_set():
                raise ValueError(f"{self._file.name} is closed")
            self._records += records
            self._buffered += sum(map(len, records))
            if (
                self._buffered >= self._flush_bytes
                or self._clock() - self._last_flush >= self._flush_interval
            ):
                self._write_out()

    def flush(self) -> None:
        with self._lock:
            if not self._closed.is_set():
                self._write_out()

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()  # also wakes the flusher, to end
            try:
                self._write_out()
            finally:
                self._file.close()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()

    def _flush_periodically(self) -> None:
        while not self._closed.wait(self._flush_interval):
            self.flush()

    def _write_out(self) -> None:
        """Called with the lock held."""
        self._last_flush = self._clock()
        if not self._records:
            return
        data = memoryview(b"".join(self._records))
        self._records.clear()
        self._buffered = 0
        while data:
            data = data[self._file.write(data) :]


_ANCHOR_TEXT = "timestamps: the harness host's CLOCK_MONOTONIC (the trace's t)"
_ANCHOR = re.compile(re.escape(_ANCHOR_TEXT) + r" \+ (-?[0-9]+\.[0-9]+) s")


def harness_clock_offset(path: str) -> float | None:
    """For a capture the harness wrote: wall-clock time minus the trace's `t`; else None."""
    try:
        point = append_point(path)
    except (CaptureFormatError, OSError):
        return None
    return _anchor_in(point.comment) if point is not None else None


def _anchor_in(comment: str) -> float | None:
    found = _ANCHOR.fullmatch(comment)
    return float(found.group(1)) if found else None


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
    interface: str = ""  # where its first packet was captured (pcapng: a tap's name)
    opened: float | None = None  # time of its first packet
    closed: float | None = None  # time of its first FIN or RST

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
        self.seen_end = 0  # stream offset after the last byte any segment carried on the wire
        self.decoder = FrameDecoder()
        self.failed = False
        self.last_time = 0.0  # of the last bytes decoded

    def syn(self, seq: int) -> None:
        if self.base is None:  # a retransmitted SYN must not move a stream under way
            self.base = (seq + 1) % _SEQ_MOD

    def segment(self, seq: int, data: bytes, t: float, cut: int = 0) -> None:
        """`data` at `seq`, and `cut` more bytes after it that the capture did not keep."""
        if self.failed or not (data or cut):
            return
        if self.base is None:
            # The capture began mid-connection: the first byte seen is offset 0.
            self.base = seq
        offset = self._unwrap(seq)
        self.seen_end = max(self.seen_end, offset + len(data) + cut)
        if not data:
            return
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
        elif self.seen_end > self.next_offset and not self.failed:
            self._fail(
                None,
                f"{self.seen_end - self.next_offset} bytes missing from the capture "
                "(cut by its snapshot length)",
                self.last_time,
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
        self.last_time = t
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
    """Every TCP connection in a pcap or pcapng file, in order of first packet, as frames.

    `ports` keeps only connections with one end on one of those ports. A
    capture that starts mid-connection is read from its first byte; which end
    is the server is then guessed from the port (DEFAULT_PORT or `ports`).
    Each direction is put back in sequence-number order: a retransmission of
    bytes already read is dropped, a segment ahead of a gap waits for it, and
    bytes the capture never had (a gap never filled, or cut by the snapshot
    length) end that direction with a `StreamError` whose `code` is None.
    A connection seen on several interfaces (a capture on "any") is one.
    """
    server_ports = {DEFAULT_PORT, *(ports or ())}
    live: dict[frozenset[Endpoint], _ReadConnection] = {}
    found: list[PcapConnection] = []
    for packet in read_packets(path):
        segment = tcp_segment(packet)
        if segment is None:
            continue
        src, dst, flags = segment.src, segment.dst, segment.flags
        if ports is not None and src[1] not in ports and dst[1] not in ports:
            continue
        key = frozenset((src, dst))
        conn = live.get(key)
        is_new_syn = flags & (_SYN | _ACK) == _SYN
        # A fresh SYN on a known address pair is a new connection (port
        # reuse), unless it retransmits the SYN that opened this one.
        if conn is None or (is_new_syn and conn.syn_seq != segment.seq):
            if conn is not None:
                conn.finish()
            conn = _start_connection(src, dst, flags, server_ports, packet.interface)
            live[key] = conn
            found.append(conn.result)
        if conn.result.opened is None:
            conn.result.opened = packet.timestamp
        if flags & (_FIN | _RST) and conn.result.closed is None:
            conn.result.closed = packet.timestamp
        direction: Direction = "c2s" if src == conn.result.client else "s2c"
        stream = conn.streams[direction]
        if flags & _SYN:
            if is_new_syn:
                conn.syn_seq = segment.seq
            stream.syn(segment.seq)
            continue
        stream.segment(segment.seq, segment.data, packet.timestamp, segment.cut)
    for conn in live.values():
        conn.finish()
    return found


def _start_connection(
    src: Endpoint, dst: Endpoint, flags: int, server_ports: set[int], interface: str
) -> _ReadConnection:
    if flags & _SYN:
        client, server = (dst, src) if flags & _ACK else (src, dst)
    elif src[1] in server_ports and dst[1] not in server_ports:
        client, server = dst, src
    else:
        client, server = src, dst
    result = PcapConnection(client, server, interface=interface)
    return _ReadConnection(result, {d: _StreamReassembler(result, d) for d in ("c2s", "s2c")})
