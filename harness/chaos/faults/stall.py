from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from harness.chaos.faults.base import Fault, Item

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class StallFault(Fault):
    """Nothing is forwarded in this direction from `start` for `duration` seconds (until
    removed without one); the socket stays open. `hold` delivers it all afterwards, in
    order; `drop` discards it."""

    type_name: ClassVar[str] = "stall"

    mode: Literal["hold", "drop"] = "hold"

    def on_frame(self, item: Item, stage: FaultStage) -> None:
        # Raw bytes (a corrupted frame upstream in the chain) stall like frames.
        stalled = isinstance(item, bytes) or self.selects(item)
        if stalled and stage.in_time_window():
            if self.mode == "drop":
                stage.record("dropped", item)
                return
            stage.hold(item)
            stage.record("held", item)
            end = stage.window_end()
            if stage.held == 1 and end is not None:
                stage.call_at(end, lambda: self._release(stage))
            return
        if stage.held:
            self._release(stage)  # the window ended between timer ticks: keep the order
        stage.forward(item)

    def _release(self, stage: FaultStage) -> None:
        released = stage.release()
        if released:
            stage.record("released", counts=False, released=released)
