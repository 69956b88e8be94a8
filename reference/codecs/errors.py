"""The codec layer's error types: each says which side of the pipe failed.

`BackendUnavailable` is a setup verdict (this machine cannot run that
backend), `EncoderFailure` is the Primary's own encoder breaking mid-stream
(the Primary answers it with a reconfiguration onto another backend), and
`DecodeError` is the Viewer being handed bytes it cannot turn into a picture.
"""

from __future__ import annotations


class CodecError(Exception):
    """Base of every error this package raises; always names the backend."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend}: {reason}")
        self.backend = backend
        self.reason = reason


class BackendUnavailable(CodecError):
    """A backend could not be opened, or could not pass one picture through."""


class EncoderFailure(CodecError):
    """A working encoder failed mid-stream; its output can no longer be trusted."""


class DecodeError(CodecError):
    """The bytes given to a decoder are not a decodable access unit."""


class KeyframeRequired(DecodeError):
    """A delta unit arrived while the decoder has no reference picture.

    Raised after `configure`, `reset` or a previous `DecodeError`, until a
    keyframe is decoded: a delta unit then would decode against nothing.
    """
