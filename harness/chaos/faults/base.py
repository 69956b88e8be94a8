"""What every frame fault shares: the common scenario parameters and their checks.

A fault is configuration only: a dataclass whose fields are exactly the
parameters a scenario file writes. What happens to a frame is its
`on_frame(item, stage)`; the `FaultStage` holds the per-connection state
(held frames, timers) and the tools to forward, hold, delay and record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union, get_args, get_origin

from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import MEDIA_TYPES, Frame, FrameType, pack_frame
from reference.protocol.messages import UnknownMessage, decode_message

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage

# What moves through a chain of faults: a frame, or raw wire bytes that no
# longer are one (a corrupted or cut frame), which later faults pass on as is.
Item = Frame | bytes
FRAME_TYPE_NAMES = tuple(t.name for t in FrameType)


class FaultSpecError(ValueError):
    """A fault spec a scenario author got wrong; the message names the parameter."""


@dataclass(kw_only=True)
class Fault:
    type_name: ClassVar[str] = ""
    # Which frame types the fault sees when `frame_types` is not given.
    default_frame_types: ClassVar[frozenset[FrameType]] = frozenset(FrameType)

    id: str | None = None
    direction: Literal["v2p", "p2v", "both"] = "both"
    frame_types: list[str] | None = None
    messages: list[str] | None = None
    probability: float = 1.0
    after_frames: int = 0
    count: int | None = None
    start: float = 0.0
    duration: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _conforms(value, hints[f.name]):
                raise FaultSpecError(
                    f"{self.type_name}: parameter {f.name!r} must be {_describe(hints[f.name])}, "
                    f"got {value!r}"
                )
        for name in ("frame_types", "messages"):
            if getattr(self, name) == []:
                raise FaultSpecError(f"{self.type_name}: {name!r} is empty: it would match nothing")
        for name in self.frame_types or ():
            if name.upper() not in FRAME_TYPE_NAMES:
                raise FaultSpecError(
                    f"{self.type_name}: unknown frame type {name!r} in 'frame_types' "
                    f"(one of {', '.join(FRAME_TYPE_NAMES)})"
                )
        if not 0.0 <= self.probability <= 1.0:
            raise FaultSpecError(f"{self.type_name}: 'probability' must be within 0..1")
        self.at_least("after_frames", 0)
        self.at_least("count", 0)
        self.at_least("start", 0)
        self.at_least("duration", 0)
        self.check()

    def check(self) -> None:
        """Checks of a fault's own parameters; raise FaultSpecError."""

    def at_least(self, name: str, low: float) -> None:
        value = getattr(self, name)
        if value is not None and value < low:
            raise FaultSpecError(f"{self.type_name}: {name!r} must be >= {low}, got {value!r}")

    # --- selection -------------------------------------------------------------

    @property
    def types(self) -> frozenset[FrameType]:
        if self.frame_types is not None:
            return frozenset(FrameType[name.upper()] for name in self.frame_types)
        if self.messages is not None:
            return frozenset({FrameType.CONTROL})
        return self.default_frame_types

    def applies_to(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def selects(self, item: Item) -> bool:
        """The frame is of a type (and for CONTROL, a message) this fault is about."""
        if isinstance(item, bytes) or item.type not in self.types:
            return False
        if self.messages is None or item.type is not FrameType.CONTROL:
            return True
        return message_name(item) in self.messages

    def params(self) -> dict[str, Any]:
        """The parameters as a scenario file would write them, defaults left out."""
        out: dict[str, Any] = {"type": self.type_name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    # --- behaviour -------------------------------------------------------------

    def on_frame(self, item: Item, stage: FaultStage) -> None:
        """Most faults: frames in their selection and window are `apply`-ed, the rest pass."""
        if isinstance(item, Frame) and stage.eligible(item):
            self.apply(item, stage)
        else:
            stage.forward(item)

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        raise NotImplementedError


def frame_bytes(frame: Frame) -> bytes:
    # Frames here were all accepted by the decoder (or copied from ones that
    # were): no validation, the bytes are the ones that came in.
    return pack_frame(frame)


def message_name(frame: Frame) -> str | None:
    """The name of a CONTROL frame's message; None for media or an unparsable payload."""
    if frame.type is not FrameType.CONTROL:
        return None
    try:
        message = decode_message(frame.payload)
    except RemoteProtocolError:
        return None
    return message.name if isinstance(message, UnknownMessage) else message.NAME


def frame_epoch(frame: Frame) -> int | None:
    """Media: the header's epoch. CONTROL: the message's `epoch=` field (PROTOCOL.md 2.4)."""
    if frame.type in MEDIA_TYPES:
        return frame.epoch
    try:
        epoch = getattr(decode_message(frame.payload), "epoch", None)
    except RemoteProtocolError:
        return None
    return epoch if isinstance(epoch, int) else None


def _conforms(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, arg) for arg in get_args(hint))
    if origin is Literal:
        return value in get_args(hint)
    if origin is list:
        (item,) = get_args(hint)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in get_args(hint) if a is not type(None)]
        optional = type(None) in get_args(hint)
        return " or ".join(parts) + (" (or left out)" if optional else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {_describe(get_args(hint)[0]).removeprefix('a ')}s"
    names = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
