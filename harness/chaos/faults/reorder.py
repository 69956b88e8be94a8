from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault, FaultSpecError, Item, message_name
from reference.protocol.frames import Frame, FrameType

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class ReorderFault(Fault):
    """Holds control messages named in `hold` until one named in `until` has passed,
    then delivers them right after it (STREAM_STATE after STREAM_ACCEPTED).

    Other frames pass meanwhile. After `max_hold_ms` without an `until`
    message the held ones are released anyway, so a scenario cannot wedge.
    """

    type_name: ClassVar[str] = "reorder"

    hold: list[str]
    until: list[str]
    max_hold_ms: float = 5000.0

    def check(self) -> None:
        if not self.hold or not self.until:
            raise FaultSpecError(f"{self.type_name}: 'hold' and 'until' each need a message name")
        self.at_least("max_hold_ms", 0)

    def selects(self, item: Item) -> bool:
        return (
            isinstance(item, Frame)
            and item.type is FrameType.CONTROL
            and message_name(item) in self.hold
        )

    def on_frame(self, item: Item, stage: FaultStage) -> None:
        if stage.held and isinstance(item, Frame) and item.type is FrameType.CONTROL:
            name = message_name(item)
            if name in self.until:
                stage.forward(item)
                self._release(stage, f"after {name}")
                return
        if isinstance(item, Frame) and stage.eligible(item):
            stage.hold(item)
            stage.record("held", item, until=self.until)
            if stage.held == 1:
                timer = stage.call_at(
                    stage.now() + self.max_hold_ms / 1000,
                    lambda: self._release(stage, "max_hold_ms ran out"),
                )
                stage.memory["timer"] = timer
            return
        stage.forward(item)

    def _release(self, stage: FaultStage, why: str) -> None:
        timer = stage.memory.pop("timer", None)
        if timer is not None:
            timer.cancel()
        released = stage.release()
        if released:
            stage.record("released", counts=False, released=released, why=why)
