"""EPOCH and KEY monitors beyond their minimal cases."""

from __future__ import annotations

from harness.checks.engine import check_records
from harness.checks.verdict import Status
from reference.protocol.messages import StreamStateMessage
from reference.protocol.states import StreamState
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream


def test_epoch_1_after_a_primary_restart_compares_with_the_new_primarys_epochs() -> None:
    """A restarted Primary starts its epochs again; only live connections' epochs count."""
    trace = Trace()
    old = trace.wire(conn="c1")
    t = accepted_stream(old, 0.0, epoch=5)
    old.close(t + 1.0)
    new = trace.wire(conn="c2")
    t = accepted_stream(new, t + 2.0, epoch=1)
    trace.action(t + 0.5, "reconfigure")
    new.p2v(t + 0.6, StreamStateMessage(state=StreamState.RECONFIGURING, epoch=2))
    new.video(t + 4.0, 2, key=True)
    (verdict,) = check_records(trace.records, {"EPOCH-1": {}})
    assert verdict.status is Status.PASS, [e.what for e in verdict.evidence]

    broken = Trace()
    old = broken.wire(conn="c1")
    t = accepted_stream(old, 0.0, epoch=5)
    old.close(t + 1.0)
    new = broken.wire(conn="c2")
    t = accepted_stream(new, t + 2.0, epoch=1)
    broken.action(t + 0.5, "reconfigure")
    new.p2v(t + 0.6, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
    new.video(t + 4.0, 1, key=True)
    (verdict,) = check_records(broken.records, {"EPOCH-1": {}})
    assert verdict.status is Status.FAIL
