"""The handshake, negotiation and framing rules against the real sans-IO peers.

Each deviation switch of VER, AUTH, SNAP, NEG, LEGACY and FRAME (and STATE-1) makes a
reference peer break one rule; on a virtual clock the trace must FAIL exactly the IDs the
switch names (BREAKS) and nothing else but the same fault seen by another rule
(CONSEQUENCES). Malformed input and unknown messages are
injected between the two sides, as the frame proxy does, towards the Primary and
towards the Viewer: each receiver is judged on the tap next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.checks.registry import run_checks
from harness.checks.verdict import Status, Verdict
from harness.trace import Trace
from harness.wire.scapy_layer import malformed_frames
from reference.loopback import Loopback
from reference.protocol.deviations import BREAKS, CONSEQUENCES, PRIMARY_DEVIATIONS, Deviation
from reference.protocol.frames import Frame, FrameType, encode_frame
from reference.protocol.messages import Hello, SetStream
from reference.protocol.requirements import BY_ID
from reference.protocol.states import ViewerState

FPS = 1 / 30
SECRET = "s3cret"
UNKNOWN = encode_frame(Frame(FrameType.CONTROL, b"FUTURE_THING|x=1"))
UNKNOWN_FIELD = encode_frame(Frame(FrameType.CONTROL, b"HEARTBEAT|mood=fine"))
UNPARSABLE = encode_frame(Frame(FrameType.CONTROL, b"STREAM_STATE|9|epoch=x"))


def verdicts(trace: Trace, ids: list[str] | None = None, **params: Any) -> dict[str, Verdict]:
    wanted = {i: params for i in (ids or list(BY_ID))}
    return {v.requirement: v for v in run_checks(trace.records, wanted)}


def streaming(lb: Loopback, until: float = 2.0) -> None:
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(until, picture_interval=FPS)


def run_until_state(lb: Loopback, state: ViewerState, limit: float) -> None:
    while lb.viewer.state is not state:
        if lb.now >= limit:
            raise AssertionError(f"the Viewer never reached {state.value} by {limit} s")
        lb.run_until(lb.now + 0.05, picture_interval=FPS)


def reconnect(lb: Loopback) -> None:
    """Stream, lose the Primary's bytes until the Viewer gives up, then let it reconnect."""
    streaming(lb)
    lb.primary_silent = True
    run_until_state(lb, ViewerState.DISCONNECTED, 20.0)
    lb.primary_silent = False
    run_until_state(lb, ViewerState.STREAMING, 30.0)
    lb.run_until(lb.now + 1.0, picture_interval=FPS)


def unauthenticated(lb: Loopback) -> None:
    """A client that never says HELLO (a Viewer would give up at its own deadline)."""
    lb.primary.start(0.0)
    lb.connect_mute_client()
    lb.run_until(8.0)


def requests_before_auth(lb: Loopback) -> None:
    """A client that says HELLO, then SET_STREAM instead of AUTH (AUTH-4's situation)."""
    lb.primary.start(0.0)
    lb.connect_mute_client()
    for message in (Hello(client="viewer", version=2), SetStream()):
        lb.inject_to_primary(encode_frame(Frame(FrameType.CONTROL, message.encode())))
    lb.pump()
    lb.run_until(8.0)


def rejected(lb: Loopback) -> None:
    lb.viewer.request = SetStream(codec="vp9")
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(4.0)


def unknown_to_primary(lb: Loopback) -> None:
    streaming(lb)
    lb.inject_to_primary(UNKNOWN + UNKNOWN_FIELD)
    lb.pump()
    lb.run_until(4.0, picture_interval=FPS)


def unknown_to_viewer(lb: Loopback) -> None:
    streaming(lb)
    lb.inject_to_viewer(UNKNOWN + UNKNOWN_FIELD)
    lb.pump()
    lb.run_until(4.0, picture_interval=FPS)


def unparsable_to_viewer(lb: Loopback) -> None:
    streaming(lb)
    lb.inject_to_viewer(UNPARSABLE)
    lb.pump()
    lb.run_until(4.0, picture_interval=FPS)


def accept_after_reconfiguration(lb: Loopback) -> None:
    """The Viewer's STREAM_ACCEPTED is held until the next STREAM_STATE (a reconfiguration)
    has passed: the accept then names an older epoch than the Viewer already holds."""
    held: list[Frame] = []
    snapshot_seen = False

    def hold_accept(frame: Frame) -> list[Frame]:
        nonlocal snapshot_seen
        if frame.type is not FrameType.CONTROL:
            return [frame]
        name = frame.payload.split(b"|")[0]
        if name == b"STREAM_ACCEPTED" and not held:
            held.append(frame)
            return []
        if name == b"STREAM_STATE" and held and snapshot_seen:
            released = [frame, *held]
            held.clear()
            return released
        snapshot_seen = snapshot_seen or name == b"STREAM_STATE"
        return [frame]

    lb.viewer_bound_filter = hold_accept
    lb.primary.start(0.0)
    lb.connect()
    lb.run_until(0.5, picture_interval=FPS)
    lb.primary.reconfigure(lb.now)
    lb.run_until(6.0, picture_interval=FPS)


def plain(lb: Loopback) -> None:
    streaming(lb, 3.0)


DRIVERS: dict[Deviation, tuple[Callable[[Loopback], None], dict[str, Any]]] = {
    Deviation.NO_PROTO: (plain, {}),
    Deviation.REUSE_NONCE: (reconnect, {}),
    Deviation.ACCEPT_WRONG_ANSWER: (plain, {"viewer_secret": "not-the-secret"}),
    Deviation.NO_AUTH_TIMEOUT: (unauthenticated, {}),
    Deviation.STALE_SNAPSHOT: (plain, {}),
    Deviation.ACCEPT_WITHOUT_EPOCH: (plain, {}),
    Deviation.SILENT_REJECTION: (rejected, {}),
    Deviation.ERROR_ON_UNKNOWN: (unknown_to_primary, {}),
    Deviation.STATE_TO_VERSION_1: (plain, {"viewer_version": 1}),
    Deviation.HELLO_WITHOUT_ROLE: (plain, {}),
    Deviation.EARLY_KEYFRAME_REQUEST: (plain, {}),
    Deviation.VIEWER_ERROR_ON_UNKNOWN: (unknown_to_viewer, {}),
    Deviation.SILENT_CLOSE_ON_BAD_INPUT: (unparsable_to_viewer, {}),
    Deviation.FLAGGED_CAPS: (plain, {}),
    Deviation.ACCEPT_ROLLS_BACK: (accept_after_reconfiguration, {}),
    Deviation.ANSWERS_BEFORE_AUTH: (requests_before_auth, {}),
    Deviation.STATE_NAMES: (plain, {}),
}


def simulate(sim: Any, drive: Callable[[Loopback], None], **kwargs: Any) -> Trace:
    lb, rec = sim(**kwargs)
    drive(lb)
    trace: Trace = rec.trace()
    return trace


@pytest.mark.parametrize("deviation", list(DRIVERS), ids=lambda d: d.value)
def test_deviation_fails_exactly_its_requirements(sim: Any, deviation: Deviation) -> None:
    drive, kwargs = DRIVERS[deviation]
    side = "primary_deviations" if deviation in PRIMARY_DEVIATIONS else "viewer_deviations"
    results = verdicts(simulate(sim, drive, **kwargs, **{side: frozenset({deviation})}),
                       secret=SECRET)
    failed = {k for k, v in results.items() if v.status is Status.FAIL}
    # Every rule is judged here: the same fault seen by another rule may FAIL it too.
    also = set(CONSEQUENCES.get(deviation, ()))
    assert failed - also == set(BREAKS[deviation]), {k: results[k].evidence for k in failed}
    for requirement in BREAKS[deviation]:
        assert results[requirement].evidence


@pytest.mark.parametrize("deviation", list(DRIVERS), ids=lambda d: d.value)
def test_same_situation_with_conforming_peers_passes(sim: Any, deviation: Deviation) -> None:
    """The twin: the situation that exposes the deviation, with correct peers."""
    drive, kwargs = DRIVERS[deviation]
    results = verdicts(simulate(sim, drive, **kwargs), secret=SECRET)
    failed = {k: v.evidence for k, v in results.items()
              if v.status is Status.FAIL}
    assert not failed
    for requirement in BREAKS[deviation]:
        assert results[requirement].status is Status.PASS, results[requirement].summary


@pytest.mark.parametrize("direction", ["v2p", "p2v"])
@pytest.mark.parametrize("name", ["bad_magic_swapped", "unknown_type_5", "length_uint32_max",
                                  "video_length_over_max_payload"])
def test_malformed_frames_towards_either_side_are_answered(
    sim: Any, direction: str, name: str
) -> None:
    """Scapy-built bad frames injected towards the Primary or the Viewer: ERROR, then close."""
    lb, rec = sim()
    streaming(lb)
    inject = lb.inject_to_primary if direction == "v2p" else lb.inject_to_viewer
    inject(malformed_frames()[name])
    lb.pump()
    lb.run_until(4.0, picture_interval=FPS)
    results = verdicts(rec.trace(), ["FRAME-1", "FRAME-2"])
    assert results["FRAME-2"].status is Status.PASS, results["FRAME-2"].evidence
    assert results["FRAME-1"].status is Status.PASS, results["FRAME-1"].evidence
    receiver = "Primary" if direction == "v2p" else "Viewer"
    assert any(receiver in e.what or "ERROR" in e.what for e in results["FRAME-2"].evidence)
