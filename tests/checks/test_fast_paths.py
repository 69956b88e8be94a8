"""The engine's fast paths judge exactly as if every monitor saw every record.

A monitor whose `reads_plain_media` is False is not handed plain media: AUDIO and
non-key VIDEO from the Primary, and the Viewer's telemetry of decoding them (most
of a trace). That is a speed-up only if the verdict cannot change. Here the same
traces go through the engine twice, with the fast paths and `exhaustive` (every
hook handed every record it has a hook for), and every verdict must be equal:
status, summary (with its counts) and evidence. The traces: every catalogue case,
conforming and broken, and a real run of the reference peers (tests/scenarios/
test_deviations.py does the same on every rule-breaking peer).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from harness.checks.engine import Engine
from harness.checks.verdict import Status, Verdict
from harness.checks.wire import ConnectionTracker
from harness.trace import Record
from reference.protocol.requirements import CATALOGUE
from tests.checks.cases import all_cases

CASES, PARAMS = all_cases()
IDS = [r.id for r in CATALOGUE]


def both_ways(records: Iterable[Record], params: dict[str, dict]) -> tuple[list[Verdict], ...]:
    records = list(records)
    requested = {rid: params.get(rid, {}) for rid in IDS}
    fast = Engine(requested).feed_all(records).finish()
    exhaustive = Engine(requested, exhaustive=True).feed_all(records).finish()
    return fast, exhaustive


@pytest.mark.parametrize("broken", [False, True], ids=["conforming", "broken"])
@pytest.mark.parametrize("requirement", IDS)
def test_every_case_gets_the_same_verdicts(requirement: str, broken: bool) -> None:
    fast, exhaustive = both_ways(CASES[requirement](broken).records, PARAMS)
    assert fast == exhaustive


def test_a_recorded_run_gets_the_same_verdicts(recorded_trace: list[Record]) -> None:
    tracker = ConnectionTracker()
    frames = [tracker.frame(r) for r in recorded_trace if r["kind"] == "frame"]
    plain = sum(f.plain_media for f in frames)
    assert plain > len(frames) / 2, "the run should be mostly plain media"
    fast, exhaustive = both_ways(recorded_trace, {})
    assert fast == exhaustive
    decided = [v for v in fast if v.status in (Status.PASS, Status.FAIL)]
    assert len(decided) >= 20, [(v.requirement, v.status) for v in fast]


def test_a_monitor_that_needs_plain_media_is_caught(
    recorded_trace: list[Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison can fail: EPOCH-2 counts every media frame, and says it reads none."""
    from harness.checks.monitor import MONITORS

    monkeypatch.setattr(MONITORS["EPOCH-2"], "reads_plain_media", False)
    fast, exhaustive = both_ways(recorded_trace, {})
    assert fast != exhaustive


def test_a_monitor_that_skips_too_early_is_caught(
    recorded_trace: list[Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison can fail: EPOCH-2 dropping out of a connection's plain media at once."""
    from harness.checks.monitor import MONITORS
    from harness.checks.wire import WireFrame

    cls = MONITORS["EPOCH-2"]
    judge = cls.on_media  # type: ignore[attr-defined]

    def hasty(self: Any, frame: WireFrame) -> None:
        judge(self, frame)
        self.skip_plain_media(frame)

    monkeypatch.setattr(cls, "on_media", hasty)
    fast, exhaustive = both_ways(recorded_trace, {})
    assert fast != exhaustive
