"""Captures written from byte streams read back by scapy and by `read_pcap_streams`."""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.plist import PacketList
from scapy.utils import checksum, rdpcap, wrpcap

from harness.wire.capture_format import append_point
from harness.wire.pcap import (
    DEFAULT_MSS,
    ETHERNET_MSS,
    LOOPBACK_MSS,
    MAX_MSS,
    Direction,
    Endpoint,
    PcapWriter,
    _checksum,
    _word_sum,
    read_pcap_streams,
)
from harness.wire.scapy_layer import LVS, LVSControl, malformed_frames
from reference.protocol.errors import ErrorCode
from reference.protocol.frames import (
    DEFAULT_PORT,
    HEADER_SIZE,
    Frame,
    FrameFlags,
    FrameType,
    encode_frame,
)

MSS = ETHERNET_MSS  # the shared capture is cut as on Ethernet: the keyframe spans segments
T0 = 1_700_000_000.0  # realistic epoch seconds: timestamps must survive at full precision
VIEWER_A = ("10.0.0.2", 50_000)
VIEWER_B = ("fd00::2", 50_001)
PRIMARY_V4 = ("10.0.0.1", DEFAULT_PORT)
PRIMARY_V6 = ("fd00::1", DEFAULT_PORT)


def same_microsecond(t: float) -> object:
    """A comparison that tells one pcap microsecond from the next, even at epoch scale."""
    return pytest.approx(t, abs=5e-7)


def control(text: str, sequence: int = 0, epoch: int = 0) -> Frame:
    return Frame(FrameType.CONTROL, text.encode(), epoch, sequence)


@dataclass(frozen=True)
class Write:
    t: float
    conn: str
    direction: Direction
    frames: tuple[Frame, ...]


BIG_KEYFRAME = Frame(
    FrameType.VIDEO, bytes(range(256)) * 16, 1, 2, 66_000, FrameFlags.KEYFRAME
)  # 4096 bytes: three segments

AUDIO = Frame(FrameType.AUDIO, b"aac", 1, 5, 70_000)
CSD = Frame(FrameType.CSD, b"\x00\x00\x00\x01\x67", 1, 1, 66_000)
HELLO = control("HELLO|role=viewer|version=2")
WRITES = [
    Write(T0 + 0.000_101, "a", "c2s", (HELLO,)),
    Write(T0 + 0.000_202, "a", "s2c", (control("PROTO|version=2", 1), control("AUTH|n=0", 2))),
    Write(T0 + 0.001_000, "b", "c2s", (HELLO,)),
    Write(T0 + 0.002_345, "a", "s2c", (control("STREAM_STATE|1|epoch=1", 3, 1),)),
    Write(T0 + 0.010_000, "a", "s2c", (CSD,)),
    Write(T0 + 0.010_001, "a", "s2c", (BIG_KEYFRAME,)),
    Write(T0 + 0.020_000, "b", "s2c", (control("PROTO|version=2", 1), AUDIO)),
    Write(T0 + 0.033_333, "a", "c2s", (control("REQ_KEYFRAME|epoch=1", 1),)),
    Write(T0 + 0.999_999, "a", "s2c", (Frame(FrameType.VIDEO, b"p" * 900, 1, 3, 99_000),)),
]

ENDPOINTS = {"a": (VIEWER_A, PRIMARY_V4), "b": (VIEWER_B, PRIMARY_V6)}


def write_capture(path: Path) -> None:
    with PcapWriter(str(path), mss=MSS, wall_clock_offset=0) as writer:
        writer.open_connection("a", *ENDPOINTS["a"], t=T0)
        writer.open_connection("b", *ENDPOINTS["b"], t=T0 + 0.000_500)
        for w in WRITES:
            writer.write(w.conn, w.direction, b"".join(encode_frame(f) for f in w.frames), w.t)
        writer.close_connection("a", T0 + 1.5)
        writer.close_connection("b", T0 + 1.6, initiator="s2c")


def sent(conn: str, direction: Direction) -> list[tuple[float, Frame]]:
    return [
        (w.t, f) for w in WRITES if w.conn == conn and w.direction == direction for f in w.frames
    ]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "two_viewers.pcapng"
    write_capture(path)
    return path


def endpoints(packet: Packet) -> tuple[tuple[str, int], tuple[str, int]]:
    network = packet[IP] if IP in packet else packet[IPv6]
    return (network.src, packet[TCP].sport), (network.dst, packet[TCP].dport)


def payload_of(packet: Packet) -> bytes:
    tcp = packet[TCP]
    return bytes(tcp.original[tcp.dataofs * 4 :])


def with_payload(packet: Packet, data: bytes) -> Packet:
    """`packet` carrying `data` instead, its IP length and checksums made right for it."""
    changed = packet.copy()
    changed[TCP].remove_payload()
    changed[TCP].add_payload(data)
    del changed[TCP].chksum
    if IP in changed:
        del changed[IP].len, changed[IP].chksum
    else:
        del changed[IPv6].plen
    return Ether(bytes(changed))


def assert_consistent_tcp(packets: PacketList, mss: int) -> list[tuple[Endpoint, Endpoint]]:
    """Every segment at most `mss` long, in sequence, acking what the peer sent; the SYNs' ends."""
    next_seq: dict[tuple[Endpoint, Endpoint], int] = {}
    opened: list[tuple[Endpoint, Endpoint]] = []
    for packet in packets:
        src, dst = endpoints(packet)
        tcp = packet[TCP]
        flags = str(tcp.flags)
        data = payload_of(packet)
        assert len(data) <= mss
        if "S" in flags:
            if "A" not in flags:
                opened.append((src, dst))
            assert ("MSS", mss) in tcp.options
        else:
            assert tcp.seq == next_seq[src, dst], f"{src}->{dst} {flags} skips bytes"
        if "A" in flags:
            assert tcp.ack == next_seq[dst, src], f"{src}->{dst} {flags} acks the wrong byte"
        next_seq[src, dst] = (tcp.seq + len(data) + ("S" in flags) + ("F" in flags)) % 2**32
    return opened


def assert_scapy_checksums_agree(packets: PacketList) -> None:
    """The IPv4 and TCP checksums in the file are the ones scapy computes itself."""
    for packet in packets:
        rebuilt = packet.copy()
        del rebuilt[TCP].chksum
        if IP in rebuilt:
            del rebuilt[IP].chksum
        rebuilt = Ether(bytes(rebuilt))
        assert rebuilt[TCP].chksum == packet[TCP].chksum
        if IP in packet:
            assert rebuilt[IP].chksum == packet[IP].chksum


def test_scapy_reads_consistent_tcp_conversations(capture: Path) -> None:
    packets = rdpcap(str(capture))
    opened = assert_consistent_tcp(packets, MSS)
    assert opened == [ENDPOINTS["a"], ENDPOINTS["b"]]
    assert [str(p[TCP].flags) for p in packets[:3]] == ["S", "SA", "A"]
    assert [str(p[TCP].flags) for p in packets[-3:]] == ["FA", "FA", "A"]
    assert endpoints(packets[-3])[0] == PRIMARY_V6  # "b" was closed by the server


def test_big_frame_spans_mss_segments(capture: Path) -> None:
    packets = rdpcap(str(capture))
    keyframe_time = WRITES[5].t
    segments = [payload_of(p) for p in packets if float(p.time) == same_microsecond(keyframe_time)]
    assert [len(s) for s in segments] == [MSS, MSS, len(encode_frame(BIG_KEYFRAME)) - 2 * MSS]
    assert b"".join(segments) == encode_frame(BIG_KEYFRAME)


def test_scapy_dissects_every_frame_header_in_the_capture(capture: Path) -> None:
    packets = rdpcap(str(capture))
    seen: dict[tuple[str, Direction], list[tuple[float, Frame]]] = {}
    for packet in packets:
        src, dst = endpoints(packet)
        conn = "a" if VIEWER_A in (src, dst) else "b"
        direction: Direction = "c2s" if src[1] != DEFAULT_PORT else "s2c"
        layer = packet.getlayer(LVS)
        while layer is not None:
            assert layer.magic == b"LV"
            body = layer.payload
            if layer.type == FrameType.CONTROL:
                assert isinstance(body, LVSControl)
                payload = body.text
            else:
                payload = body.load
            if len(payload) == layer.length:  # a frame spanning segments is checked by length
                header = Frame(
                    FrameType(layer.type),
                    payload,
                    layer.epoch,
                    layer.sequence,
                    layer.timestamp,
                    FrameFlags(int(layer.flags)),
                )
            else:
                assert (
                    payload
                    == encode_frame(BIG_KEYFRAME)[HEADER_SIZE : HEADER_SIZE + MSS - HEADER_SIZE]
                )
                header = BIG_KEYFRAME
                assert layer.length == len(BIG_KEYFRAME.payload)
                assert layer.timestamp == BIG_KEYFRAME.timestamp_us
            seen.setdefault((conn, direction), []).append((float(packet.time), header))
            layer = body.getlayer(LVS)
    for (conn, direction), frames in seen.items():
        expected = sent(conn, direction)
        assert [f for _, f in frames] == [f for _, f in expected]
        assert [t for t, _ in frames] == [same_microsecond(t) for t, _ in expected]
    assert len(seen) == 4


def test_read_pcap_streams_gives_back_every_frame_and_time(capture: Path) -> None:
    connections = read_pcap_streams(str(capture))
    assert [(c.client, c.server) for c in connections] == [ENDPOINTS["a"], ENDPOINTS["b"]]
    for conn, read in zip("ab", connections, strict=True):
        assert read.errors == [] and read.unfinished == {}
        for direction in ("c2s", "s2c"):
            expected = sent(conn, direction)
            got = [(c.timestamp, c.frame) for c in read.frames if c.direction == direction]
            assert [f for _, f in got] == [f for _, f in expected]
            assert [t for t, _ in got] == [same_microsecond(t) for t, _ in expected]
        times = [c.timestamp for c in read.frames]
        assert times == sorted(times)


def test_timestamps_keep_microseconds(capture: Path) -> None:
    read = read_pcap_streams(str(capture))[0]
    last = read.frames[-1]
    assert last.frame.sequence == 3
    assert round((last.timestamp - T0) * 1e6) == 999_999


def test_retransmissions_and_reordering_are_undone(capture: Path, tmp_path: Path) -> None:
    packets = list(rdpcap(str(capture)))
    big = [i for i, p in enumerate(packets) if len(payload_of(p)) == MSS]
    hello = next(i for i, p in enumerate(packets) if p.haslayer(LVSControl))
    syn_b = next(i for i, p in enumerate(packets) if IPv6 in p)
    req_keyframe = next(i for i, p in enumerate(packets) if float(p.time) == WRITES[7].t)
    # The keyframe's middle segment was lost and comes back after the viewer's
    # REQ_KEYFRAME; the first segment is sent twice; so are a HELLO and a SYN.
    late = packets[big[1]].copy()
    late.time = WRITES[7].t + 0.005
    mangled_order = [
        *packets[:syn_b],
        packets[syn_b].copy(),
        *packets[syn_b : big[1]],
        packets[big[0]].copy(),
        *packets[big[1] + 1 : req_keyframe + 1],
        late,
        *packets[req_keyframe + 1 :],
    ]
    mangled_order.insert(hello + 1, packets[hello].copy())
    mangled = tmp_path / "mangled.pcap"
    wrpcap(str(mangled), mangled_order)
    original = read_pcap_streams(str(capture))
    reread = read_pcap_streams(str(mangled))
    for got, expected in zip(reread, original, strict=True):
        for direction in ("c2s", "s2c"):
            assert got.frames_sent(direction) == expected.frames_sent(direction)
        assert got.errors == [] and got.unfinished == {}
    (keyframe,) = [c for c in reread[0].frames if c.frame == BIG_KEYFRAME]
    assert keyframe.timestamp == same_microsecond(late.time)  # complete only once the gap filled
    times = [c.timestamp for c in reread[0].frames]
    assert times == sorted(times)


def test_sequence_numbers_wrapping_past_2_to_the_32(capture: Path, tmp_path: Path) -> None:
    packets = list(rdpcap(str(capture)))
    shift = {}
    for packet in packets[:2]:  # SYN and SYN-ACK: put each ISN 1000 bytes below the wrap
        src, _ = endpoints(packet)
        shift[src] = (2**32 - 1000 - packet[TCP].seq) % 2**32
    for packet in packets:
        src, dst = endpoints(packet)
        if src in shift:
            tcp = packet[TCP]
            tcp.seq = (tcp.seq + shift[src]) % 2**32
            if "A" in str(tcp.flags):
                tcp.ack = (tcp.ack + shift[dst]) % 2**32
            del tcp.chksum
    wrapped = tmp_path / "wrapped.pcap"
    wrpcap(str(wrapped), [p.__class__(bytes(p)) for p in packets])
    read = read_pcap_streams(str(wrapped))[0]
    assert read.errors == []
    assert read.frames_sent("s2c") == [f for _, f in sent("a", "s2c")]


def test_decode_errors_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcapng"
    hello = encode_frame(control("HELLO|role=viewer|version=2"))
    with PcapWriter(str(path), wall_clock_offset=0) as writer:
        writer.open_connection(1, VIEWER_A, PRIMARY_V4, T0)
        writer.write(1, "c2s", hello, T0 + 0.1)
        writer.write(1, "c2s", malformed_frames()["unknown_type_5"], T0 + 0.2)
        writer.write(1, "c2s", hello, T0 + 0.3)  # after lost framing: never decoded
        writer.write(1, "s2c", encode_frame(control("PROTO|version=2")), T0 + 0.4)
        writer.reset_connection(1, T0 + 0.5)
    (read,) = read_pcap_streams(str(path))
    assert read.frames_sent("c2s") == [control("HELLO|role=viewer|version=2")]
    assert read.frames_sent("s2c") == [control("PROTO|version=2")]
    (error,) = read.errors
    assert (error.direction, error.code, error.offset) == (
        "c2s",
        ErrorCode.BAD_FRAME_TYPE,
        len(hello),
    )
    assert error.timestamp == same_microsecond(T0 + 0.2)


def test_missing_bytes_and_an_unfinished_frame_are_reported(capture: Path, tmp_path: Path) -> None:
    packets = list(rdpcap(str(capture)))
    big = [i for i, p in enumerate(packets) if len(payload_of(p)) == MSS]
    del packets[big[1]]  # the capture missed the keyframe's middle segment
    conn_b_last_data = max(
        i for i, p in enumerate(packets) if VIEWER_B in endpoints(p) and payload_of(p)
    )
    packets[conn_b_last_data] = with_payload(  # "aac" audio cut short: ends unfinished
        packets[conn_b_last_data], payload_of(packets[conn_b_last_data])[:-2]
    )
    lossy = tmp_path / "lossy.pcap"
    wrpcap(str(lossy), packets)
    a, b = read_pcap_streams(str(lossy))
    (gap,) = a.errors
    assert gap.code is None and gap.direction == "s2c" and "bytes missing" in gap.message
    assert a.frames_sent("s2c") == [f for _, f in sent("a", "s2c")][:4]
    assert b.frames_sent("s2c") == [control("PROTO|version=2", 1)]
    assert b.unfinished == {"s2c": HEADER_SIZE + 1}


def test_a_capture_started_mid_connection_is_still_read(capture: Path, tmp_path: Path) -> None:
    packets = [p for p in rdpcap(str(capture)) if "S" not in str(p[TCP].flags)]
    late = tmp_path / "late.pcap"
    wrpcap(str(late), packets[1:])  # also drop "a"'s handshake ACK
    b, a = read_pcap_streams(str(late))  # "b"'s handshake ACK is now the first packet
    assert (a.client, a.server) == ENDPOINTS["a"]
    assert (b.client, b.server) == ENDPOINTS["b"]
    assert a.frames_sent("s2c") == [f for _, f in sent("a", "s2c")]


def test_ports_keep_only_matching_connections(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    with PcapWriter(str(path)) as writer:
        writer.open_connection("web", ("10.0.0.2", 40_000), ("10.0.0.1", 80), T0)
        writer.write("web", "c2s", b"GET / HTTP/1.1\r\nHost: primary\r\n\r\n", T0)
        writer.open_connection("lvs", VIEWER_A, PRIMARY_V4, T0)
    assert [c.server for c in read_pcap_streams(str(path), ports={DEFAULT_PORT})] == [PRIMARY_V4]
    web, _ = read_pcap_streams(str(path))
    assert web.errors[0].code is ErrorCode.BAD_MAGIC


def test_packets_reach_the_file_before_the_writer_closes(tmp_path: Path) -> None:
    path = tmp_path / "live.pcapng"
    now = [0.0]
    # A long interval: the background flush must not run during the test.
    writer = PcapWriter(str(path), mss=MSS, flush_interval=60, clock=lambda: now[0])
    writer.open_connection("a", VIEWER_A, PRIMARY_V4, T0)
    writer.write("a", "s2c", encode_frame(BIG_KEYFRAME), T0 + 1)
    assert read_pcap_streams(str(path)) == []  # buffered, but the file is a valid capture
    now[0] += 60
    writer.write("a", "s2c", encode_frame(AUDIO), T0 + 2)  # the interval is up: all goes out
    assert len(rdpcap(str(path))) == 3 + 3 + 1
    assert read_pcap_streams(str(path))[0].frames_sent("s2c") == [BIG_KEYFRAME, AUDIO]
    writer.write("a", "c2s", encode_frame(HELLO), T0 + 3)
    writer.flush()
    assert read_pcap_streams(str(path))[0].frames_sent("c2s") == [HELLO]
    writer.close()


def test_buffered_bytes_are_written_without_waiting_for_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "bulk.pcapng"
    writer = PcapWriter(str(path), flush_interval=60, flush_bytes=10_000, clock=lambda: 0.0)
    writer.open_connection("a", VIEWER_A, PRIMARY_V4, T0)
    assert len(rdpcap(str(path))) == 0
    writer.write("a", "s2c", encode_frame(BIG_KEYFRAME) * 3, T0 + 1)
    assert read_pcap_streams(str(path))[0].frames_sent("s2c") == [BIG_KEYFRAME] * 3
    writer.close()


def test_a_writer_dropped_without_close_still_leaves_every_packet(tmp_path: Path) -> None:
    path = tmp_path / "dropped.pcapng"
    writer = PcapWriter(str(path), flush_interval=60)
    writer.open_connection("a", VIEWER_A, PRIMARY_V4, T0)
    writer.write("a", "c2s", encode_frame(HELLO), T0 + 1)
    del writer
    gc.collect()
    assert read_pcap_streams(str(path))[0].frames_sent("c2s") == [HELLO]
    assert not [t for t in threading.enumerate() if str(path) in t.name]  # the flusher ended


def test_loopback_sized_segments_by_default(tmp_path: Path) -> None:
    path = tmp_path / "loopback.pcapng"
    big = encode_frame(Frame(FrameType.VIDEO, bytes(range(251)) * 1000, 1, 2, 0))  # 251016 bytes
    odd = encode_frame(Frame(FrameType.VIDEO, b"\xff" * 4001, 1, 3, 0))  # odd length: padded sum
    with PcapWriter(str(path)) as writer:
        for conn, (client, server) in ENDPOINTS.items():
            writer.open_connection(conn, client, server, T0)
            writer.write(conn, "s2c", big + odd, T0 + 1)
            writer.write(conn, "c2s", encode_frame(HELLO), T0 + 2)
            writer.close_connection(conn, T0 + 3)
    packets = rdpcap(str(path))
    # Even an IPv6 packet fits the 65535 bytes of a packet that scapy reads.
    assert writer.mss == DEFAULT_MSS and max(len(p) for p in packets) == 65535
    assert {len(payload_of(p)) % 2 for p in packets} == {0, 1}
    assert assert_consistent_tcp(packets, DEFAULT_MSS) == [ENDPOINTS["a"], ENDPOINTS["b"]]
    assert_scapy_checksums_agree(packets)
    for conn in "ab":
        client = ENDPOINTS[conn][0]
        sizes = [len(payload_of(p)) for p in packets if endpoints(p)[1] == client]
        assert [s for s in sizes if s] == [DEFAULT_MSS] * 3 + [len(big + odd) - 3 * DEFAULT_MSS]
    read = read_pcap_streams(str(path))
    assert [(c.client, c.server) for c in read] == [ENDPOINTS["a"], ENDPOINTS["b"]]
    for connection in read:
        assert connection.errors == [] and connection.unfinished == {}
        assert [f.sequence for f in connection.frames_sent("s2c")] == [2, 3]
        assert connection.frames_sent("c2s") == [HELLO]


def test_checksums_are_the_ones_scapy_computes(capture: Path) -> None:
    packets = rdpcap(str(capture))
    assert any(IPv6 in p for p in packets) and any(IP in p for p in packets)
    assert_scapy_checksums_agree(packets)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",  # odd length: padded with a zero byte
        b"\xff\xf7",  # with the prefix, sums to 0xFFFF: the checksum is 0
        b"\xff\xfe\x01",
        bytes(range(256)) * 300,  # long enough for `_word_sum` to fold its halves
    ],
)
def test_word_sum_gives_the_internet_checksum(data: bytes) -> None:
    # scapy's `checksum` is the textbook loop over 16-bit words. The prefix
    # (protocol 6, length) stands for the pseudo-header: data never all zero.
    prefix = bytes([0, 6, 0, len(data) % 256])
    assert _checksum(_word_sum(prefix) + _word_sum(data)) == checksum(prefix + data)


def test_real_loopback_sized_packets_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "real_loopback.pcapng"
    payload = encode_frame(Frame(FrameType.VIDEO, b"\x01" * 70_000, 1, 2, 0))
    with PcapWriter(str(path), mss=LOOPBACK_MSS) as writer:  # IPv6: 65557-byte packets
        writer.open_connection("b", VIEWER_B, PRIMARY_V6, T0)
        writer.write("b", "s2c", payload, T0 + 1)
    (read,) = read_pcap_streams(str(path))
    assert read.errors == [] and read.unfinished == {}
    assert [f.sequence for f in read.frames_sent("s2c")] == [2]


def test_append_continues_a_capture(tmp_path: Path) -> None:
    """In the same section: the same interfaces for the same names, the same clock anchor."""
    path = tmp_path / "appended.pcapng"
    anchors = []
    for conn, interface in (("first", "tap"), ("second", "tap"), ("third", "other")):
        with PcapWriter(str(path), append=True) as writer:
            anchors.append(writer.wall_clock_offset)
            writer.open_connection(conn, VIEWER_A, PRIMARY_V4, 1.0, interface)
            writer.write(conn, "c2s", encode_frame(HELLO), 1.5)
            writer.close_connection(conn, 2.0)
    read = read_pcap_streams(str(path))
    assert [c.frames_sent("c2s") for c in read] == [[HELLO], [HELLO], [HELLO]]
    assert [c.interface for c in read] == ["tap", "tap", "other"]
    assert anchors == [anchors[0]] * 3
    data = path.read_bytes()
    assert data.count(bytes.fromhex("0a0d0d0a")) == 1  # one section header
    point = append_point(str(path))
    assert point is not None and point.interfaces == ["tap", "other"]
    with pytest.raises(ValueError, match="cannot append with"):
        PcapWriter(str(path), append=True, wall_clock_offset=anchors[0] + 1)
    (tmp_path / "notes.txt").write_text("not a capture")
    with pytest.raises(ValueError, match="cannot append"):
        PcapWriter(str(tmp_path / "notes.txt"), append=True)
    path.write_bytes(data[:-3])
    with pytest.raises(ValueError, match="ends inside a block: cannot append"):
        PcapWriter(str(path), append=True)


def test_writer_refuses_unknown_and_closed_connections(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MSS"):
        PcapWriter(str(tmp_path / "x.pcap"), mss=MAX_MSS + 1)
    with PcapWriter(str(tmp_path / "x.pcap")) as writer:
        with pytest.raises(KeyError):
            writer.write("nope", "c2s", b"x", T0)
        writer.open_connection("a", VIEWER_A, PRIMARY_V4, T0)
        with pytest.raises(ValueError, match="already open"):
            writer.open_connection("a", VIEWER_A, PRIMARY_V4, T0)
        writer.close_connection("a", T0)
        with pytest.raises(KeyError, match="not open"):
            writer.write("a", "c2s", b"x", T0)
        with pytest.raises(ValueError, match="IP version"):
            writer.open_connection("b", VIEWER_B, PRIMARY_V4, T0)


def test_a_reused_address_pair_is_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "reconnect.pcapng"
    with PcapWriter(str(path)) as writer:
        writer.open_connection("first", VIEWER_A, PRIMARY_V4, T0)
        writer.write("first", "c2s", encode_frame(HELLO)[:-1], T0 + 0.1)  # cut by a fault
        writer.reset_connection("first", T0 + 0.2)
        writer.open_connection("second", VIEWER_A, PRIMARY_V4, T0 + 1)
        writer.write("second", "c2s", encode_frame(HELLO), T0 + 1.1)
    first, second = read_pcap_streams(str(path))
    assert first.frames == [] and first.unfinished == {"c2s": len(encode_frame(HELLO)) - 1}
    assert second.frames_sent("c2s") == [HELLO] and second.unfinished == {}
