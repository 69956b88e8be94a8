from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault
from reference.protocol.frames import Frame

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class DropFault(Fault):
    """Frames in the selection and window never arrive: media loss, lost events."""

    type_name: ClassVar[str] = "drop"

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        stage.record("dropped", frame)
