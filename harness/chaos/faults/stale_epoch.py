from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault, FaultSpecError, Item, frame_epoch
from reference.protocol.frames import MAX_CONTROL_PAYLOAD, MEDIA_TYPES, Frame, FrameType

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class StaleEpochFault(Fault):
    """Once a newer epoch appears, replays `count` frames remembered from the epoch before
    it right after the first newer frame, then `inject_control` (if given) with `{old}` and
    `{new}` filled in: `STREAM_STATE|1|epoch={old}`.

    Remembers the last `remember` frames of `frame_types` (default: media) per
    epoch; `count` here is per newer epoch, not a total.
    """

    type_name: ClassVar[str] = "stale_epoch"
    default_frame_types: ClassVar[frozenset[FrameType]] = MEDIA_TYPES

    count: int | None = 5
    inject_control: str | None = None
    remember: int = 64
    # Newer-epoch frames to let through first: with 2 or more the new CSD and keyframe
    # are already in, so a Viewer that ignores epochs would decode what follows.
    inject_after: int = 0

    def check(self) -> None:
        self.at_least("remember", 1)
        self.at_least("inject_after", 0)
        if self.inject_control is not None:
            try:
                text = self.inject_control.format(old=0, new=0)
            except (KeyError, IndexError, ValueError) as exc:
                raise FaultSpecError(
                    f"{self.type_name}: 'inject_control' may only use {{old}} and {{new}}: {exc}"
                ) from None
            if len(text.encode()) > MAX_CONTROL_PAYLOAD:
                raise FaultSpecError(f"{self.type_name}: 'inject_control' is too long")

    def on_frame(self, item: Item, stage: FaultStage) -> None:
        stage.forward(item)  # the newer frame itself is never held back
        if not isinstance(item, Frame) or not self.selects(item):
            return
        epoch = frame_epoch(item)
        if epoch is None:
            return
        stage.runtime.seen += 1
        memory: dict[int, deque[Frame]] = stage.memory.setdefault("epochs", {})
        newest: int | None = stage.memory.get("newest")
        pending = stage.memory.get("pending")
        if pending is not None and epoch == pending[1]:
            pending[2] -= 1
            if pending[2] <= 0:
                stage.memory["pending"] = None
                self._inject(stage, pending[3], old=pending[0], new=pending[1])
        if newest is None or epoch > newest:
            if newest is not None and newest in memory and self._triggered(stage):
                if self.inject_after:
                    # [old, new, frames still to let through, what to replay]
                    stage.memory["pending"] = [
                        newest,
                        epoch,
                        self.inject_after,
                        deque(memory[newest]),
                    ]
                else:
                    self._inject(stage, memory[newest], old=newest, new=epoch)
            stage.memory["newest"] = epoch
            # Two epochs are all a replay needs: memory stays bounded over a long run.
            for old in [e for e in memory if e < (newest if newest is not None else epoch)]:
                del memory[old]
        memory.setdefault(epoch, deque(maxlen=self.remember)).append(item)

    def _triggered(self, stage: FaultStage) -> bool:
        if stage.runtime.seen <= self.after_frames or not stage.in_time_window():
            return False
        return self.probability >= 1.0 or stage.rng.random() < self.probability

    def _inject(self, stage: FaultStage, remembered: deque[Frame], *, old: int, new: int) -> None:
        replay = list(remembered)
        if self.count is not None:
            replay = replay[-self.count :] if self.count else []
        for frame in replay:
            stage.record("injected", frame, old_epoch=old, new_epoch=new)
            stage.forward(frame)
        if self.inject_control is not None:
            text = self.inject_control.format(old=old, new=new)
            control = Frame(FrameType.CONTROL, text.encode())
            stage.record("injected", control, old_epoch=old, new_epoch=new, msg=text)
            stage.forward(control)
