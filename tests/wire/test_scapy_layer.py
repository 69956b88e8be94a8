"""The scapy layer against the reference codec: same bytes, same fields, same verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Packet, Raw

from harness.wire.scapy_layer import (
    LVS,
    LVSControl,
    bind_port,
    build_frame,
    malformed_cases,
    malformed_frames,
    packet_from_frame,
)
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import (
    DEFAULT_PORT,
    MAGIC,
    MAX_CONTROL_PAYLOAD,
    UINT32_MAX,
    UINT64_MAX,
    Frame,
    FrameDecoder,
    FrameFlags,
    FrameType,
    encode_frame,
)

KEY = FrameFlags.KEYFRAME

FRAMES = {
    "control": Frame(FrameType.CONTROL, b"STREAM_STATE|1|epoch=3", epoch=3, sequence=1),
    "control_empty": Frame(FrameType.CONTROL, b""),
    "control_at_limit": Frame(FrameType.CONTROL, b"x" * MAX_CONTROL_PAYLOAD),
    "csd": Frame(FrameType.CSD, b"\x00\x00\x00\x01\x67\x42", epoch=2, sequence=7, timestamp_us=9),
    "video_keyframe": Frame(FrameType.VIDEO, b"\x65" * 300, 2, 8, 33_366, KEY),
    "video_delta": Frame(FrameType.VIDEO, b"\x41" * 40, 2, 9, 66_733),
    "audio": Frame(FrameType.AUDIO, b"\xff\xf1" * 10, 2, 10, 70_000),
    "audio_empty": Frame(FrameType.AUDIO, b"", 2, 11, 71_000),
    "field_maxima": Frame(FrameType.VIDEO, b"v", UINT32_MAX, UINT32_MAX, UINT64_MAX, KEY),
}


def frame_of(layer: Packet) -> Frame:
    """The frame a dissected LVS layer describes, payload taken from its own layer."""
    body = layer.payload
    if isinstance(body, LVSControl):
        payload = body.text
    elif isinstance(body, Raw):
        payload = body.load
    else:
        payload = b""
    return Frame(
        FrameType(layer.type),
        payload,
        layer.epoch,
        layer.sequence,
        layer.timestamp,
        FrameFlags(int(layer.flags)),
    )


def lvs_layers(packet: Packet) -> list[Packet]:
    layers: list[Packet] = []
    while (layer := packet.getlayer(LVS, len(layers) + 1)) is not None:
        layers.append(layer)
    return layers


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_built_frames_equal_the_reference_encoding(frame: Frame) -> None:
    assert bytes(packet_from_frame(frame)) == encode_frame(frame)
    assert build_frame(
        frame.type,
        frame.payload,
        flags=int(frame.flags),
        epoch=frame.epoch,
        sequence=frame.sequence,
        timestamp_us=frame.timestamp_us,
    ) == encode_frame(frame)


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_dissected_header_fields_are_the_frame(frame: Frame) -> None:
    layer = LVS(encode_frame(frame))
    assert layer.magic == MAGIC
    assert layer.type == frame.type
    assert int(layer.flags) == frame.flags
    assert layer.epoch == frame.epoch
    assert layer.sequence == frame.sequence
    assert layer.timestamp == frame.timestamp_us
    assert layer.length == len(frame.payload)
    assert frame_of(layer) == frame


frames = st.builds(
    lambda t, payload, epoch, seq, ts, key: Frame(
        t,
        payload,
        epoch,
        seq,
        ts,
        KEY if key and t is FrameType.VIDEO else FrameFlags.NONE,
    ),
    st.sampled_from(FrameType),
    st.binary(max_size=200),
    st.integers(0, UINT32_MAX),
    st.integers(0, UINT32_MAX),
    st.integers(0, UINT64_MAX),
    st.booleans(),
)


@settings(max_examples=50, deadline=None)
@given(frames)
def test_any_valid_frame_builds_and_dissects_like_the_reference(frame: Frame) -> None:
    data = bytes(packet_from_frame(frame))
    assert data == encode_frame(frame)
    assert frame_of(LVS(data)) == frame


def test_control_message_text_is_visible() -> None:
    layer = LVS(encode_frame(FRAMES["control"]))
    assert layer[LVSControl].text == b"STREAM_STATE|1|epoch=3"
    assert "STREAM_STATE|1|epoch=3" in str(layer.show(dump=True))
    assert "LVS CONTROL epoch=3 seq=1 len=22" in layer.summary()


def test_media_payload_is_raw() -> None:
    layer = LVS(encode_frame(FRAMES["video_keyframe"]))
    assert layer.flags.KEYFRAME
    assert layer[Raw].load == FRAMES["video_keyframe"].payload
    assert not layer.haslayer(LVSControl)


@pytest.mark.parametrize(
    ("sport", "dport"), [(50_000, DEFAULT_PORT), (DEFAULT_PORT, 50_000)], ids=["c2s", "s2c"]
)
def test_several_frames_in_one_segment_dissect_as_a_chain(sport: int, dport: int) -> None:
    sent = list(FRAMES.values())
    payload = b"".join(encode_frame(f) for f in sent)
    segment = IP(bytes(IP() / TCP(sport=sport, dport=dport) / Raw(payload)))
    layers = lvs_layers(segment)
    assert [frame_of(layer) for layer in layers] == sent
    assert "Padding" not in segment


def test_a_chain_of_packets_builds_each_length_from_its_own_payload() -> None:
    sent = [FRAMES["control"], FRAMES["video_keyframe"], FRAMES["audio_empty"], FRAMES["csd"]]
    chain = packet_from_frame(sent[0])
    for frame in sent[1:]:
        chain = chain / packet_from_frame(frame)
    assert bytes(chain) == b"".join(encode_frame(f) for f in sent)


def test_segments_cut_inside_a_frame_show_the_remainder_as_raw() -> None:
    data = encode_frame(FRAMES["video_keyframe"]) + encode_frame(FRAMES["audio"])
    cut = len(encode_frame(FRAMES["video_keyframe"])) + 10  # inside the audio header
    first = IP(bytes(IP() / TCP(dport=DEFAULT_PORT) / Raw(data[:cut])))
    assert [frame_of(x) for x in lvs_layers(first)] == [FRAMES["video_keyframe"]]
    assert first.lastlayer().load == data[cut - 10 : cut]
    middle = IP(bytes(IP() / TCP(dport=DEFAULT_PORT) / Raw(data[100:200])))
    assert LVS not in middle
    assert middle[Raw].load == data[100:200]


def test_bind_port_dissects_another_port() -> None:
    port = 17_450
    data = encode_frame(FRAMES["control"])
    assert LVS not in IP(bytes(IP() / TCP(sport=40_000, dport=port) / Raw(data)))
    bind_port(port)
    for sport, dport in ((40_000, port), (port, 40_000)):
        segment = IP(bytes(IP() / TCP(sport=sport, dport=dport) / Raw(data)))
        assert frame_of(segment[LVS]) == FRAMES["control"]


CASES = malformed_cases()


def test_malformed_frames_are_the_cases_bytes() -> None:
    assert malformed_frames() == {name: case.data for name, case in CASES.items()}


@pytest.mark.parametrize("name", CASES)
def test_malformed_frame_gets_the_expected_verdict(name: str) -> None:
    case = CASES[name]
    decoder = FrameDecoder()
    decoder.feed(encode_frame(FRAMES["control"]) + case.data)
    assert decoder.next_frame() == FRAMES["control"]  # framing held up to the bad frame
    if case.rejected_with is None:
        assert decoder.frames() == []
        assert 0 < decoder.buffered <= len(case.data)
    else:
        with pytest.raises(RemoteProtocolError) as raised:
            decoder.frames()
        assert raised.value.code is case.rejected_with


@pytest.mark.parametrize("name", CASES)
def test_malformed_frame_is_refused_by_the_reference_encoder_or_lies_about_length(
    name: str,
) -> None:
    """Nothing in the suite is a valid frame in disguise."""
    data = CASES[name].data
    layer = LVS(data)
    if not isinstance(layer, LVS):
        assert name == "truncated_header"
        return
    try:
        frame = frame_of(layer)
        valid = encode_frame(frame) == data
    except ValueError:
        valid = False
    assert not valid


def test_malformed_fields_are_visible_when_dissected() -> None:
    assert LVS(CASES["bad_magic_swapped"].data).magic == b"VL"
    assert LVS(CASES["unknown_type_255"].data).type == 0xFF
    assert int(LVS(CASES["unknown_flag_0x02_on_video"].data).flags) == 0x02
    assert LVS(CASES["length_uint32_max"].data).length == UINT32_MAX
    lying = LVS(CASES["length_larger_than_payload"].data)
    assert lying.length == len(lying[Raw].load) + 100
