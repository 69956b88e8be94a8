from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault, frame_bytes
from reference.protocol.frames import Frame

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class TruncateFault(Fault):
    """Sends only the first `keep_bytes` of a matching frame, then closes the connection:
    the receiver sees the stream end in the middle of a frame."""

    type_name: ClassVar[str] = "truncate"

    keep_bytes: int

    def check(self) -> None:
        self.at_least("keep_bytes", 0)

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        data = frame_bytes(frame)
        kept = data[: self.keep_bytes]
        stage.record("truncated", frame, keep_bytes=len(kept), frame_bytes=len(data))
        stage.forward(kept)
        stage.close_connection(f"fault {stage.runtime.fault_id}: truncate")
