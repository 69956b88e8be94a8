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


def test_key_1_judges_every_entry_into_active_not_only_the_first_start() -> None:
    """KEY-1 after a reconfiguration (the resume is its minimal case): ACTIVE of epoch 2 before
    epoch 2's keyframe FAILs though epoch 1 started correctly."""
    from tests.checks.cases.epoch_key import key_1_reconfigure

    (verdict,) = check_records(key_1_reconfigure(False).records, {"KEY-1": {}})
    assert verdict.status is Status.PASS, [e.what for e in verdict.evidence]
    (verdict,) = check_records(key_1_reconfigure(True).records, {"KEY-1": {}})
    assert verdict.status is Status.FAIL
    assert "epoch 2" in verdict.evidence[0].what


def test_key_4_is_not_blamed_for_a_stale_tag_and_reopens_its_gate_per_pause() -> None:
    """A P-frame tagged with an old epoch is EPOCH-2's; after a pause a P-frame before the
    resumed keyframe FAILs KEY-4 even though the epoch was keyframed before the pause."""
    trace = Trace()
    wire = trace.wire()
    t = accepted_stream(wire, 0.0)
    wire.video(t + 0.1, 0)  # stale tag: not judged
    wire.p2v(t + 1.0, StreamStateMessage(state=StreamState.PAUSED, epoch=1))
    wire.video(t + 2.0, 1)  # before the resumed keyframe
    wire.csd(t + 2.0, 1).video(t + 2.0, 1, key=True)
    wire.p2v(t + 2.0, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
    (verdict,) = check_records(trace.records, {"KEY-4": {}})
    assert verdict.status is Status.FAIL
    assert len(verdict.evidence) == 1 and "epoch 1" in verdict.evidence[0].what


def test_key_3_a_join_whose_stream_pauses_at_once_owes_no_keyframe() -> None:
    """Seen in a soak: a Viewer accepted 0.15 s before a pause; the paused Primary sent
    no keyframe, rightly, and KEY-3 was FAILed on the reference Primary."""
    from reference.protocol.messages import Heartbeat, SetStream, StreamAccepted
    from tests.checks.cases.common import handshake

    def join(pause: bool) -> Trace:
        trace = Trace()
        wire = trace.wire()
        t = handshake(wire, 0.0)
        wire.p2v(t, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
        wire.v2p(t + 0.001, SetStream(width=640, height=360, fps=30, bitrate=1000000))
        wire.p2v(t + 0.002, StreamAccepted(epoch=1))
        if pause:
            wire.p2v(t + 0.15, StreamStateMessage(state=StreamState.PAUSED, epoch=1))
        wire.p2v(t + 2.0, Heartbeat())
        wire.p2v(t + 4.0, Heartbeat())
        return trace

    (paused,) = check_records(join(pause=True).records, {"KEY-3": {}})
    assert paused.status is not Status.FAIL, [e.what for e in paused.evidence]
    (running,) = check_records(join(pause=False).records, {"KEY-3": {}})
    assert running.status is Status.FAIL  # ACTIVE all along and no keyframe: owed
