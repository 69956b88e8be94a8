from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault
from reference.protocol.frames import Frame

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class DelayFault(Fault):
    """Matching frames arrive `delay_ms` (+/- `jitter_ms`) late, in their own order.

    Frames outside the selection are not held behind them: delaying CONTROL
    frames is how control messages get reordered relative to media.
    """

    type_name: ClassVar[str] = "delay"

    delay_ms: float
    jitter_ms: float = 0.0

    def check(self) -> None:
        self.at_least("delay_ms", 0)
        self.at_least("jitter_ms", 0)

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        delay_ms = self.delay_ms
        if self.jitter_ms:
            delay_ms = max(0.0, delay_ms + stage.rng.uniform(-self.jitter_ms, self.jitter_ms))
        stage.record("delayed", frame, delay_ms=round(delay_ms, 3))
        stage.forward_later(frame, delay_ms / 1000)
