"""Regression traces for verdicts a certification of independent peers showed wrong.

Each test is a hand-written trace (tests/checks/builder.py) of the situation in
tests/independent/FINDINGS.md (branch `independent`), judged by one monitor:
a correct peer that the old monitor FAILed must PASS (or go unjudged), and the
fault next to it must still FAIL.
"""

from __future__ import annotations

from harness.checks.engine import Engine
from harness.checks.verdict import Status
from harness.trace import STOP_PEERS
from reference.protocol.causes import Cause
from reference.protocol.messages import Heartbeat, SetStream, StreamAccepted, StreamStateMessage
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import RecordKind
from tests.checks.builder import Trace
from tests.checks.cases.common import accepted_stream, handshake, streaming_viewer

ACTIVE = StreamState.ACTIVE


def judge(requirement: str, trace: Trace) -> tuple[Status, str]:
    (verdict,) = Engine({requirement: {}}).feed_all(trace.records).finish()
    evidence = "; ".join(e.what for e in verdict.evidence)
    return verdict.status, f"{verdict.summary}: {evidence}"


# --- F2b: RECON-1 measures the backoff from the earliest evidence of the disconnect --------


def _late_disconnected_record(delay: float, *, tap: bool) -> Trace:
    """The Viewer closes at t (its tap sees its EOF, or it writes `connection closed`),
    writes DISCONNECTED 51 ms later, and reconnects `delay` after the close."""
    trace = Trace()
    viewer = trace.viewer()
    wire = trace.wire("viewer_side:v1")
    wire.open(0.0)
    t = streaming_viewer(viewer, 0.001) + 1.0
    if tap:
        wire.half_close(t, "client")
    else:
        viewer.record(t, RecordKind.CONNECTION, action="closed", reason="heartbeat timeout")
    viewer.to(t + 0.051, ViewerState.DISCONNECTED, Cause.HEARTBEAT_TIMEOUT, epoch=1,
              server_state=ACTIVE)
    viewer.decoder(t + 0.052, "release")
    wire.close(t + 0.06)
    streaming_viewer(viewer, t + delay)
    return trace


def test_recon1_measures_from_the_connection_closed_record() -> None:
    """Old: 0.159 s after the close but 0.108 s after the late DISCONNECTED record: FAIL."""
    status, why = judge("RECON-1", _late_disconnected_record(0.159, tap=False))
    assert status is Status.PASS, why


def test_recon1_measures_from_the_viewers_close_on_its_tap() -> None:
    status, why = judge("RECON-1", _late_disconnected_record(0.159, tap=True))
    assert status is Status.PASS, why


def test_recon1_still_fails_a_reconnect_without_backoff_after_the_close() -> None:
    status, why = judge("RECON-1", _late_disconnected_record(0.09, tap=False))
    assert status is Status.FAIL, why
    assert "0.09 s after" in why, why


# --- F4b: SNAP-2 judges no snapshot by later values, and no version-1 connection ------------


def _snapshot_then_changes_on_a_v1_connection(snapshot: StreamState) -> Trace:
    """A version-1 Viewer (c1) joined first; the version-2 Viewer's snapshot (c2) is the
    first announcement, and a reconfigure 0.28 s later is (wrongly) also told to c1."""
    trace = Trace()
    v1 = trace.wire(conn="c1")
    handshake(v1, 0.0, version=1)
    v2 = trace.wire(conn="c2")
    t = handshake(v2, 1.0)
    v2.p2v(t, StreamStateMessage(state=snapshot, epoch=1))
    v1.p2v(t + 0.278, StreamStateMessage(state=StreamState.RECONFIGURING, epoch=2))
    v1.p2v(t + 0.290, StreamStateMessage(state=StreamState.ACTIVE, epoch=2))
    trace.action(t + 2.0, "note")
    return trace


def test_snap2_no_later_value_refutes_a_snapshot() -> None:
    """Old: FAIL "snapshot ACTIVE epoch 1, the stream was ACTIVE epoch 2 or RECONFIGURING
    epoch 2", though ACTIVE 1 was the truth when it was sent."""
    status, why = judge("SNAP-2", _snapshot_then_changes_on_a_v1_connection(ACTIVE))
    assert status is Status.NOT_OBSERVED, why


def _v1_state_beside_a_v2_snapshot(v2_snapshot: StreamState) -> Trace:
    """c2 (version 2) holds ACTIVE 1; a version-1 connection c1 later gets a STREAM_STATE
    (LEGACY-2's fault) that is no snapshot; c3 (version 2) then joins."""
    trace = Trace()
    first = trace.wire(conn="c2")
    t = handshake(first, 0.0)
    first.p2v(t, StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
    legacy = trace.wire(conn="c1")
    t = handshake(legacy, 1.0, version=1)
    legacy.p2v(t, StreamStateMessage(state=StreamState.PAUSED, epoch=7))
    late = trace.wire(conn="c3")
    t = handshake(late, 2.0)
    late.p2v(t, StreamStateMessage(state=v2_snapshot, epoch=1))
    trace.action(t + 2.0, "note")
    return trace


def test_snap2_skips_version_1_connections() -> None:
    """Old: c1's STREAM_STATE was judged as a snapshot (and counted as truth)."""
    status, why = judge("SNAP-2", _v1_state_beside_a_v2_snapshot(ACTIVE))
    assert status is Status.PASS, why
    assert "1 snapshot" in why, why  # c3's (c2 had no earlier truth); c1 is no snapshot


def test_snap2_still_fails_a_false_snapshot() -> None:
    status, why = judge("SNAP-2", _v1_state_beside_a_v2_snapshot(StreamState.PAUSED))
    assert status is Status.FAIL, why
    assert "snapshot PAUSED epoch 1, the stream was ACTIVE epoch 1" in why, why


# --- F4c: KEY-1 judges entries into ACTIVE, not the snapshot ----------------------------


def _snapshot_after_accept(resume_key_first: bool) -> Trace:
    """A late joiner of a running stream gets its snapshot after STREAM_ACCEPTED (SNAP-1's
    fault); a pause and a resume follow, keyed first or not."""
    trace = Trace()
    wire = trace.wire()
    t = handshake(wire, 0.0)
    wire.v2p(t + 0.001, SetStream(width=640, height=360, fps=30, bitrate=1000000))
    wire.p2v(t + 0.002, StreamAccepted(epoch=1, width=640, height=360, fps=30))
    wire.p2v(t + 0.003, StreamStateMessage(state=ACTIVE, epoch=1))  # the snapshot
    wire.csd(t + 0.004, 1).video(t + 0.005, 1, key=True)
    wire.p2v(t + 1.0, StreamStateMessage(state=StreamState.PAUSED, epoch=1))
    if resume_key_first:
        wire.csd(t + 2.0, 1).video(t + 2.0, 1, key=True)
    wire.p2v(t + 2.0, StreamStateMessage(state=ACTIVE, epoch=1))
    if not resume_key_first:
        wire.csd(t + 2.01, 1).video(t + 2.01, 1, key=True)
    return trace


def test_key1_does_not_judge_a_snapshot_sent_after_the_accept() -> None:
    """Old: FAIL "ACTIVE for epoch 1 before a keyframe of it" on the snapshot."""
    status, why = judge("KEY-1", _snapshot_after_accept(resume_key_first=True))
    assert status is Status.PASS, why
    assert "1 transition" in why, why  # the resume only


def test_key1_still_fails_an_early_active_after_such_a_snapshot() -> None:
    status, why = judge("KEY-1", _snapshot_after_accept(resume_key_first=False))
    assert status is Status.FAIL, why


# --- F6: HB-1 judges the open tail up to the close, the end of the trace or the stop -------


def _slow_viewer(close_after: float, *, stop_at: float | None = None,
                 closed: bool = True) -> Trace:
    """The Viewer's only heartbeat comes 2 s after AUTH_OK (Viewer-side tap); the
    connection lives `close_after` s past it, up to a close (or the trace's end)."""
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    t = accepted_stream(wire, 0.0)
    ok = t - 0.005 - 0.002  # accepted_stream: AUTH_OK 2 ms before the SESSION it ends on
    beat = ok + 2.0
    wire.v2p(beat, Heartbeat())
    if stop_at is not None:
        trace.action(beat + stop_at, STOP_PEERS)
    if closed:
        wire.half_close(beat + close_after, "client").close(beat + close_after + 0.001)
    else:
        wire.video(beat + close_after, 1)  # the last record: the trace ends here
    return trace


def test_hb1_fails_a_tail_longer_than_the_interval_before_the_close() -> None:
    """Old: PASS "1 heartbeat interval(s) checked" with 3.05 s open after the only beat."""
    status, why = judge("HB-1", _slow_viewer(3.05))
    assert status is Status.FAIL, why
    assert "last 3.05 s" in why, why


def test_hb1_fails_a_tail_left_open_at_the_end_of_the_trace() -> None:
    status, why = judge("HB-1", _slow_viewer(3.05, closed=False))
    assert status is Status.FAIL, why


def test_hb1_passes_a_connection_closed_within_the_interval() -> None:
    status, why = judge("HB-1", _slow_viewer(2.2))
    assert status is Status.PASS, why


def test_hb1_does_not_count_the_shutdown_after_the_stop() -> None:
    """Stopped 1.5 s after the last beat, closed 1.5 s later: the stop, not a missed beat."""
    status, why = judge("HB-1", _slow_viewer(3.0, stop_at=1.5))
    assert status is Status.PASS, why


def test_hb1_still_fails_a_gap_too_long_before_the_stop() -> None:
    status, why = judge("HB-1", _slow_viewer(3.5, stop_at=2.6))
    assert status is Status.FAIL, why
    assert "last 2.60 s" in why, why


def test_hb1_no_first_heartbeat_owed_on_a_connection_that_ended_within_the_interval() -> None:
    trace = Trace()
    wire = trace.wire("viewer_side:v1")
    t = accepted_stream(wire, 0.0)
    wire.half_close(t + 2.1, "upstream").close(t + 2.5)  # the Primary closed first
    status, why = judge("HB-1", trace)
    assert status is Status.NOT_OBSERVED, why
