"""Control grammar and typed messages: exact round trips and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.protocol.errors import ErrorCode, RemoteProtocolError
from reference.protocol.grammar import ControlText, decode_control, encode_control
from reference.protocol.messages import (
    MESSAGE_TYPES,
    Caps,
    Hello,
    SetStream,
    StreamAccepted,
    StreamStateMessage,
    UnknownMessage,
    decode_message,
)
from reference.protocol.states import StreamState

names = st.from_regex(r"[A-Z][A-Z0-9_]{0,31}", fullmatch=True)
keys = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
values = st.text(max_size=40)


@given(names, st.lists(values, max_size=4), st.dictionaries(keys, values, max_size=5))
def test_control_text_round_trips(name: str, positional: list[str], fields: dict[str, str]) -> None:
    message = ControlText(name, tuple(positional), fields)
    assert decode_control(encode_control(message)) == message


@given(st.binary(max_size=120))
def test_random_payloads_only_raise_the_protocol_error(data: bytes) -> None:
    try:
        decode_message(data)
    except RemoteProtocolError as exc:
        assert exc.code in (ErrorCode.BAD_UTF8, ErrorCode.BAD_MESSAGE, ErrorCode.BAD_FIELD)


@given(st.text(max_size=80))
def test_random_text_only_raises_the_protocol_error(text: str) -> None:
    try:
        decode_message(text.encode("utf-8"))
    except RemoteProtocolError:
        pass


def test_escaping_of_separators_and_newlines() -> None:
    message = ControlText("ERROR", (), {"code": "x", "reason": "a|b=c\nd%e"})
    wire = encode_control(message)
    assert wire == b"ERROR|code=x|reason=a%7Cb%3Dc%0Ad%25e"
    assert decode_control(wire) == message


@pytest.mark.parametrize("cls", MESSAGE_TYPES)
def test_every_message_type_round_trips(cls: type) -> None:
    samples = {
        "StreamStateMessage": StreamStateMessage(StreamState.PAUSED, 7),
        "StreamAccepted": StreamAccepted(epoch=3, width=1280, height=720, fps=30, backend="x"),
        "Caps": Caps(codecs=("h264", "hevc"), max_width=1920, max_height=1080, hw_decode=False),
        "SetStream": SetStream(width=640, height=360, fps=30, bitrate=800_000, profile="main"),
    }
    required = {"response": "ab" * 32, "nonce": "cd" * 16, "id": "s1", "epoch": 4,
                "version": 2, "event": "RECONFIG_STARTED", "reason": "r", "code": "c",
                "state": StreamState.ACTIVE}
    message = samples.get(cls.__name__)
    if message is None:
        import dataclasses
        kwargs = {f.name: required[f.name] for f in dataclasses.fields(cls)
                  if f.name in required and f.default is dataclasses.MISSING}
        message = cls(**kwargs)
    assert decode_message(message.encode()) == message


def test_unknown_names_and_fields_are_kept_not_fatal() -> None:
    unknown = decode_message(b"FUTURE_THING|x|mode=fast")
    assert isinstance(unknown, UnknownMessage)
    assert unknown.name == "FUTURE_THING"
    hello = decode_message(b"HELLO|client=viewer|version=2|colour=blue")
    assert hello == Hello(client="viewer", version=2)
    assert hello.extra == {"colour": "blue"}


@pytest.mark.parametrize(
    ("wire", "code", "words"),
    [
        (b"\xff\xfe", ErrorCode.BAD_UTF8, "not UTF-8"),
        (b"hello", ErrorCode.BAD_MESSAGE, "invalid message name"),
        (b"STREAM_STATE|1|epoch=2|epoch=3", ErrorCode.BAD_MESSAGE, "duplicate key"),
        (b"STREAM_STATE|epoch=2|1", ErrorCode.BAD_MESSAGE, "positional field"),
        (b"STREAM_STATE|9|epoch=2", ErrorCode.BAD_FIELD, "unknown stream state code"),
        (b"STREAM_STATE|1|epoch=-2", ErrorCode.BAD_FIELD, "not an unsigned integer"),
        (b"STREAM_STATE|1", ErrorCode.BAD_FIELD, "missing required field 'epoch'"),
        (b"AUTH|response=%zz", ErrorCode.BAD_MESSAGE, "bad percent escape"),
        (b"HEARTBEAT\n", ErrorCode.BAD_MESSAGE, "raw control character"),
    ],
)
def test_bad_messages_get_a_clear_error(wire: bytes, code: ErrorCode, words: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_message(wire)
    assert info.value.code is code
    assert words in str(info.value)


def test_state_codes_are_numeric_on_the_wire() -> None:
    assert StreamStateMessage(StreamState.RECONFIGURING, 5).encode() == b"STREAM_STATE|2|epoch=5"
