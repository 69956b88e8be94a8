from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.chaos.faults.base import Fault, FaultSpecError
from reference.protocol.frames import MAX_CONTROL_PAYLOAD, Frame, FrameType

if TYPE_CHECKING:
    from harness.chaos.stage import FaultStage


@dataclass(kw_only=True)
class InjectFault(Fault):
    """After a matching frame, sends frames of the harness's own towards the receiver:
    `control` texts as CONTROL frames (unknown messages or fields, unparsable text) and
    `malformed` frames by their name in the scapy bad-input suite
    (harness.wire.scapy_layer.malformed_cases), in that order.

    The matching frame itself passes first and unchanged. With `count: 1` the
    injection happens once; a malformed frame usually ends the connection, so what
    follows it in the same direction is never read.
    """

    type_name: ClassVar[str] = "inject"

    control: list[str] | None = None
    malformed: list[str] | None = None

    def check(self) -> None:
        if not self.control and not self.malformed:
            raise FaultSpecError(f"{self.type_name}: give 'control' or 'malformed' (or both)")
        for text in self.control or ():
            if len(text.encode("utf-8")) > MAX_CONTROL_PAYLOAD:
                raise FaultSpecError(f"{self.type_name}: control text {text[:40]!r} is too long")
        if self.malformed:
            # scapy takes a second to import: only scenarios that inject bad frames pay it.
            from harness.wire.scapy_layer import malformed_frames

            known = malformed_frames()
            unknown = [name for name in self.malformed if name not in known]
            if unknown:
                raise FaultSpecError(
                    f"{self.type_name}: unknown malformed frame {unknown[0]!r} "
                    f"(one of: {', '.join(sorted(known))})"
                )

    def apply(self, frame: Frame, stage: FaultStage) -> None:
        stage.forward(frame)
        stage.record(
            "injected", frame, control=list(self.control or ()),
            malformed=list(self.malformed or ()),
        )
        for text in self.control or ():
            stage.forward(Frame(FrameType.CONTROL, text.encode("utf-8")))
        if self.malformed:
            from harness.wire.scapy_layer import malformed_frames

            built = malformed_frames()
            for name in self.malformed:
                stage.forward(built[name])
