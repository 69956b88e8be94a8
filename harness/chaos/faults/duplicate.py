from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault
from reference.protocol.frames import Frame

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class DuplicateFault(Fault):
    """Matching frames arrive `copies` extra times, right after the original."""

    type_name: ClassVar[str] = "duplicate"

    copies: int = 1

    def check(self) -> None:
        self.at_least("copies", 1)

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        stage.record("duplicated", frame, copies=self.copies)
        for _ in range(1 + self.copies):
            stage.forward(frame)
