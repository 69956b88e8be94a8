"""Traces from the real sans-IO peers on a virtual clock, for checker tests.

The loopback reports every byte that crosses at each side; this builds the
same trace records the wire taps write (tap "primary_side" next to the
Primary, "viewer_side:v1" next to the Viewer) plus the Viewer's telemetry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.scenarios.loader import load_scenario
from harness.scenarios.runner import run_scenario
from harness.trace import Record, Trace, frame_record, load, read_trace
from reference.loopback import Loopback
from reference.protocol import telemetry
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.events import MediaToDecode
from reference.protocol.frames import FrameDecoder, FrameType

VIEWER = "v1"
ROOT = Path(__file__).resolve().parents[2]


class SimRecorder:
    def __init__(self, lb: Loopback) -> None:
        self.lb = lb
        self.records: list[dict[str, Any]] = []
        self._decoders: dict[tuple[str, int, str], FrameDecoder] = {}
        self._broken: set[tuple[str, int, str]] = set()
        self._seen_events = 0
        lb.wire_observer = self.observe

    def tap(self, side: str) -> str:
        return "primary_side" if side == "primary" else f"viewer_side:{VIEWER}"

    def observe(self, side: str, conn: int, direction: str, data: bytes, now: float) -> None:
        self.telemetry()
        tap, conn_id = self.tap(side), f"c{conn}"
        if direction in ("open", "close"):
            self.records.append({"t": now, "kind": "conn", "tap": tap, "conn": conn_id,
                                 "event": direction, "reason": ""})
            return
        key = (side, conn, direction)
        if key in self._broken:
            return  # as a tap: after a wire error the direction is no longer decoded
        decoder = self._decoders.setdefault(key, FrameDecoder())
        decoder.feed(data)
        try:
            for frame in iter(decoder.next_frame, None):
                self.records.append(frame_record(tap, conn_id, direction, frame, now))
        except RemoteProtocolError as exc:
            self._broken.add(key)
            self.records.append({"t": now, "kind": "wire_error", "tap": tap, "conn": conn_id,
                                 "dir": direction, "code": exc.code.value, "error": exc.message})

    def telemetry(self) -> None:
        """Viewer events so far, as the reference Viewer would write them."""
        for t, event in self.lb.viewer_events[self._seen_events:]:
            for record in telemetry.records_from_event(event, t, VIEWER):
                self.records.append({**record, "kind": "telemetry"})
            if isinstance(event, MediaToDecode) and event.frame.type is FrameType.VIDEO:
                f = event.frame
                self.records.append({"t": t, "kind": "telemetry", "viewer": VIEWER,
                                     "event": "decoded", "epoch": f.epoch, "seq": f.sequence,
                                     "key": f.is_keyframe})
        self._seen_events = len(self.lb.viewer_events)

    def trace(self) -> Trace:
        self.telemetry()
        truth = [
            {"t": t, "kind": "primary", "what": "state", "stream_state": state.name, "epoch": epoch}
            for t, state, epoch in self.lb.primary.stream.history
        ]
        return load(self.records + truth)


SimFactory = Callable[..., tuple[Loopback, SimRecorder]]


@pytest.fixture
def sim() -> SimFactory:
    def make(**kwargs: Any) -> tuple[Loopback, SimRecorder]:
        lb = Loopback(**kwargs)
        return lb, SimRecorder(lb)

    return make


@pytest.fixture(scope="module")
def recorded_trace(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    """A real run: a stall, keyframe requests, a recovery, with audio and video."""
    directory = tmp_path_factory.mktemp("run") / "frame-loss-recovery"
    scenario = load_scenario(ROOT / "scenarios" / "frame-loss-recovery.yaml")
    run_scenario(scenario, directory, seed=8)
    return read_trace(directory / "trace.jsonl")
