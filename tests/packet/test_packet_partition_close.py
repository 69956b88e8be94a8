"""HB-2 across a partition: the Primary's own close is read from its tap's half_close record.

A partition holds the Primary's FIN back from the Viewer side, so the relayed
connection (the tap's `close` record) ends only after the partition heals; the
tap records the Primary's own EOF when it happens (`half_close`, side upstream).
"""

from __future__ import annotations

import pytest

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from reference.protocol.messages import Heartbeat
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream


def _partitioned(half_close: tuple[float, str] | None) -> Status:
    """The Viewer falls silent at +1 s; the relayed connection ends at +10 s."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.v2p(t + 1.0, Heartbeat())
    wire.p2v(t + 2.0, Heartbeat()).p2v(t + 4.0, Heartbeat()).p2v(t + 6.0, Heartbeat())
    if half_close is not None:
        at, side = half_close
        trace.add(
            {
                "t": t + at,
                "kind": "conn",
                "tap": "primary_side",
                "conn": "c1",
                "event": "half_close",
                "side": side,
            }
        )
    wire.close(t + 10.0)
    trace.action(t + 12.0, "note")
    (verdict,) = Engine({"HB-2": {}}).feed_all(trace.records).finish()
    return verdict.status


def test_the_primary_closing_on_time_passes() -> None:
    assert _partitioned((7.0, "upstream")) is Status.PASS


@pytest.mark.parametrize(
    "half_close",
    [None, (7.0, "client"), (9.5, "upstream")],
    ids=["no half-close", "the Viewer side's EOF", "the Primary closing late"],
)
def test_a_late_or_missing_primary_close_fails(half_close: tuple[float, str] | None) -> None:
    assert _partitioned(half_close) is Status.FAIL
