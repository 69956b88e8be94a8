"""Control message grammar: `NAME|positional|...|key=value|...` as UTF-8 text.

    message    = name *( "|" field )
    name       = UPPER *( UPPER / DIGIT / "_" )             ; at most 32 characters
    field      = positional / keyed                         ; positionals come first
    keyed      = key "=" value
    key        = LOWER *( LOWER / DIGIT / "_" )             ; at most 32 characters
    positional = value

Values are percent-encoded: `%`, `|`, `=`, every character below U+0020 and
U+007F are written as `%XX` (two upper-case hex digits of the UTF-8 byte), so
a value can hold any text. Raw control characters anywhere are an error. The
whole payload is at most MAX_CONTROL_PAYLOAD bytes (enforced by the frame codec).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reference.protocol.errors import ErrorCode, RemoteProtocolError

MAX_NAME_LENGTH = 32
_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MUST_ESCAPE = frozenset("%|=\x7f") | {chr(c) for c in range(0x20)}
_HEX = frozenset("0123456789ABCDEFabcdef")


@dataclass(frozen=True, slots=True)
class ControlText:
    """A parsed control message before it is given a type."""

    name: str
    positional: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.positional, tuple(sorted(self.fields.items()))))


def escape_value(value: str) -> str:
    if not any(ch in _MUST_ESCAPE for ch in value):
        return value
    return "".join(
        "".join(f"%{b:02X}" for b in ch.encode("utf-8")) if ch in _MUST_ESCAPE else ch
        for ch in value
    )


def unescape_value(raw: str) -> str:
    if "%" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "%":
            hex_digits = raw[i + 1 : i + 3]
            if len(hex_digits) != 2 or not set(hex_digits) <= _HEX:
                raise RemoteProtocolError(
                    ErrorCode.BAD_MESSAGE, f"bad percent escape {raw[i : i + 3]!r} in {raw!r}"
                )
            out.append(int(hex_digits, 16))
            i += 3
        else:
            out += ch.encode("utf-8")
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(
            ErrorCode.BAD_UTF8, f"percent escapes in {raw!r} are not UTF-8"
        ) from None


def format_control(message: ControlText) -> str:
    if not _NAME.fullmatch(message.name):
        raise ValueError(f"invalid message name {message.name!r}")
    parts = [message.name]
    parts += [escape_value(p) for p in message.positional]
    for key, value in message.fields.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid field key {key!r}")
        parts.append(f"{key}={escape_value(value)}")
    return "|".join(parts)


def encode_control(message: ControlText) -> bytes:
    return format_control(message).encode("utf-8")


def parse_control_text(text: str) -> ControlText:
    for ch in text:
        if ch < " " or ch == "\x7f":
            raise RemoteProtocolError(
                ErrorCode.BAD_MESSAGE, f"raw control character {ch!r} in control message"
            )
    name, *raw_fields = text.split("|")
    if not _NAME.fullmatch(name):
        raise RemoteProtocolError(ErrorCode.BAD_MESSAGE, f"invalid message name {name[:40]!r}")
    positional: list[str] = []
    fields: dict[str, str] = {}
    for raw in raw_fields:
        key, sep, value = raw.partition("=")
        if not sep:
            if fields:
                raise RemoteProtocolError(
                    ErrorCode.BAD_MESSAGE,
                    f"{name}: positional field {raw[:40]!r} after a key=value field",
                )
            positional.append(unescape_value(raw))
            continue
        if not _KEY.fullmatch(key):
            raise RemoteProtocolError(ErrorCode.BAD_MESSAGE, f"{name}: invalid key {key[:40]!r}")
        if key in fields:
            raise RemoteProtocolError(ErrorCode.BAD_MESSAGE, f"{name}: duplicate key {key!r}")
        fields[key] = unescape_value(value)
    return ControlText(name, tuple(positional), fields)


def decode_control(payload: bytes) -> ControlText:
    """Parse a CONTROL frame payload; raises RemoteProtocolError and nothing else."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            ErrorCode.BAD_UTF8, f"control payload is not UTF-8 at byte {exc.start}"
        ) from None
    return parse_control_text(text)
