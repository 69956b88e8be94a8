from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from harness.chaos.faults.base import Fault, FaultSpecError, frame_bytes
from reference.protocol.frames import HEADER_SIZE, Frame

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class CorruptFault(Fault):
    """Flips (or, with `value`, overwrites) `length` bytes of a frame's payload or header,
    so that the receiving peer gets a malformed frame.

    `offset` counts from the start of the target; left out it is 0 for the
    header (the magic: every receiver must reject that) and random for the payload.
    """

    type_name: ClassVar[str] = "corrupt"

    target: Literal["payload", "header"] = "payload"
    offset: int | None = None
    length: int = 1
    value: int | None = None

    def check(self) -> None:
        self.at_least("offset", 0)
        self.at_least("length", 1)
        if self.value is not None and not 0 <= self.value <= 255:
            raise FaultSpecError(f"{self.type_name}: 'value' is one byte, 0..255")
        if self.target == "header" and (self.offset or 0) + self.length > HEADER_SIZE:
            raise FaultSpecError(f"{self.type_name}: the header has only {HEADER_SIZE} bytes")

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        if self.target == "header":
            base, size = 0, HEADER_SIZE
        else:
            base, size = HEADER_SIZE, len(frame.payload)
        if size == 0:
            stage.forward(frame)  # an empty payload has nothing to corrupt
            return
        length = min(self.length, size)
        if self.offset is not None:
            offset = min(self.offset, size - length)
        else:
            offset = 0 if self.target == "header" else stage.rng.randrange(size - length + 1)
        data = bytearray(frame_bytes(frame))
        start = base + offset
        before = bytes(data[start : start + length])
        for i in range(start, start + length):
            data[i] = self.value if self.value is not None else data[i] ^ 0xFF
        stage.record(
            "corrupted",
            frame,
            target=self.target,
            offset=offset,
            before=before.hex(),
            after=bytes(data[start : start + length]).hex(),
        )
        stage.forward(bytes(data))
