"""The protocol's error types: who broke the rules is the verdict.

`RemoteProtocolError` means the peer sent something the protocol forbids;
`LocalProtocolError` means our own side was asked to do something the
protocol forbids. Both carry an `ErrorCode`, the token that goes into the
`ERROR|code=...` message sent before closing (FRAME-2).
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Values of the `code` field of an ERROR message (PROTOCOL.md, "ERROR codes")."""

    BAD_MAGIC = "bad_magic"
    BAD_FRAME_TYPE = "bad_frame_type"
    BAD_FLAGS = "bad_flags"
    OVERSIZE = "oversize"
    BAD_UTF8 = "bad_utf8"
    BAD_MESSAGE = "bad_message"
    BAD_FIELD = "bad_field"
    UNEXPECTED = "unexpected"
    VERSION = "version"
    AUTH = "auth"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """Base of every error the protocol core raises on bad input or misuse."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol: the received bytes or message are not allowed."""


class LocalProtocolError(ProtocolError):
    """Our side tried to do something the protocol does not allow."""
