"""Each frame fault on real sockets: its trace records, and its effect on what arrives."""

from __future__ import annotations

import asyncio

import pytest

from harness.chaos import make_fault
from reference.protocol.errors import ErrorCode
from reference.protocol.frames import HEADER_SIZE, FrameDecoder, FrameType, encode_frame
from reference.protocol.messages import (
    Heartbeat,
    StreamAccepted,
    StreamEventMessage,
    StreamStateMessage,
)
from reference.protocol.states import StreamState
from tests.chaos.peers import control, csd, name_of, proxied, run, video

STATE = control(StreamStateMessage(state=StreamState.ACTIVE, epoch=1))
ACCEPTED = control(StreamAccepted(epoch=1))
EVENT = control(StreamEventMessage(event="RECONFIG_DONE", epoch=1))


def test_drop_loses_matching_frames_only() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault(make_fault({"type": "drop", "direction": "p2v",
                                          "frame_types": ["VIDEO"]}))
            viewer, primary = await s.connect()
            await primary.send(STATE, video(1, 1), video(1, 2), EVENT, video(1, 3), ACCEPTED)
            await viewer.recv(3)
            assert [name_of(f) for f in viewer.frames] == [
                "STREAM_STATE", "STREAM_EVENT", "STREAM_ACCEPTED"]
            dropped = s.faults(action="dropped")
            assert [r["frame"] for r in dropped] == [
                {"type": "VIDEO", "epoch": 1, "seq": n} for n in (1, 2, 3)]
            assert all(r["source"] == "frame_proxy" and r["fault"] == "drop"
                       and r["conn"] == "c1" and r["dir"] == "p2v" for r in dropped)
            # The other direction is untouched.
            await viewer.send(video(1, 9))
            assert (await primary.recv(1))[0].sequence == 9

    run(body())


def test_drop_by_message_and_frame_window() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "drop", "messages": ["STREAM_EVENT"]})
            s.proxy.add_fault({"type": "drop", "frame_types": ["VIDEO"], "after_frames": 2,
                               "count": 3})
            viewer, primary = await s.connect()
            await primary.send(EVENT, STATE, *(video(1, n) for n in range(1, 9)), EVENT)
            await viewer.recv(6)
            assert [name_of(f) for f in viewer.frames] == [
                "STREAM_STATE", "VIDEO(1:1)", "VIDEO(1:2)", "VIDEO(1:6)", "VIDEO(1:7)",
                "VIDEO(1:8)"]

    run(body())


def _dropped_with(seed: int) -> list[int]:
    async def body() -> list[int]:
        async with proxied(seed=seed) as s:
            s.proxy.add_fault({"type": "drop", "frame_types": ["VIDEO"], "probability": 0.5})
            viewer, primary = await s.connect()
            await primary.send(*(video(1, n) for n in range(200)), STATE)
            await viewer.recv_until(lambda v: any(f.type is FrameType.CONTROL for f in v.frames))
            return [r["frame"]["seq"] for r in s.faults(action="dropped")]

    return run(body())


def test_same_seed_same_drops() -> None:
    first, second, other = _dropped_with(7), _dropped_with(7), _dropped_with(8)
    assert first == second
    assert 50 < len(first) < 150
    assert first != other


def test_delay_lets_media_overtake_control() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "delay", "direction": "p2v", "messages": ["STREAM_STATE"],
                               "delay_ms": 200})
            viewer, primary = await s.connect()
            await primary.send(STATE, video(1, 1), video(1, 2))
            await viewer.recv(3)
            assert [name_of(f) for f in viewer.frames] == [
                "VIDEO(1:1)", "VIDEO(1:2)", "STREAM_STATE"]
            late = viewer.arrivals[2].t - viewer.arrivals[0].t
            assert 0.19 <= late <= 0.5, late
            (record,) = s.faults(action="delayed")
            assert record["delay_ms"] == 200 and record["frame"]["type"] == "CONTROL"

    run(body())


def test_delay_keeps_order_among_delayed() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "delay", "frame_types": ["VIDEO"], "delay_ms": 50,
                               "jitter_ms": 40})
            viewer, primary = await s.connect()
            await primary.send(*(video(1, n) for n in range(30)))
            await viewer.recv(30)
            assert [f.sequence for f in viewer.frames] == list(range(30))

    run(body())


def test_reorder_delivers_state_after_accepted() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "reorder", "direction": "p2v", "hold": ["STREAM_STATE"],
                               "until": ["STREAM_ACCEPTED"], "count": 1})
            viewer, primary = await s.connect()
            await primary.send(STATE, video(1, 1), ACCEPTED, STATE)
            await viewer.recv(4)
            assert [name_of(f) for f in viewer.frames] == [
                "VIDEO(1:1)", "STREAM_ACCEPTED", "STREAM_STATE", "STREAM_STATE"]
            assert len(s.faults(action="held")) == 1  # count: 1
            (released,) = s.faults(action="released")
            assert released["released"] == 1 and released["why"] == "after STREAM_ACCEPTED"

    run(body())


def test_reorder_releases_after_max_hold() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "reorder", "hold": ["STREAM_STATE"],
                               "until": ["STREAM_ACCEPTED"], "max_hold_ms": 100})
            viewer, primary = await s.connect()
            await primary.send(STATE, video(1, 1))
            await viewer.recv(2)
            assert [name_of(f) for f in viewer.frames] == ["VIDEO(1:1)", "STREAM_STATE"]
            assert viewer.arrivals[1].t - viewer.arrivals[0].t >= 0.09
            assert s.faults(action="released")[0]["why"] == "max_hold_ms ran out"

    run(body())


def test_duplicate() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "duplicate", "frame_types": ["AUDIO", "VIDEO"],
                               "copies": 2, "count": 1})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2), STATE)
            await viewer.recv(5)
            assert [name_of(f) for f in viewer.frames] == [
                "VIDEO(1:1)", "VIDEO(1:1)", "VIDEO(1:1)", "VIDEO(1:2)", "STREAM_STATE"]
            assert s.faults(action="duplicated")[0]["copies"] == 2

    run(body())


def test_stale_epoch_injects_old_frames_after_the_newer_one() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "stale_epoch", "direction": "p2v", "count": 3,
                               "inject_control": "STREAM_STATE|1|epoch={old}"})
            viewer, primary = await s.connect()
            old = [csd(1), video(1, 1, key=True), *(video(1, n) for n in range(2, 7))]
            await primary.send(*old, csd(2, 7), video(2, 8, key=True))
            await viewer.recv(len(old) + 2 + 4)
            after = viewer.frames[len(old):]
            assert [name_of(f) for f in after] == [
                "CSD(2:7)", "VIDEO(1:4)", "VIDEO(1:5)", "VIDEO(1:6)", "STREAM_STATE",
                "VIDEO(2:8)"]
            assert after[4].payload == b"STREAM_STATE|1|epoch=1"
            injected = s.faults(action="injected")
            assert len(injected) == 4
            assert all(r["old_epoch"] == 1 and r["new_epoch"] == 2 for r in injected)

    run(body())


def test_corrupt_header_is_rejected_by_the_receiver() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "corrupt", "target": "header", "frame_types": ["VIDEO"],
                               "after_frames": 1, "count": 1})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2), video(1, 3))
            await viewer.recv_until(lambda v: v.error is not None)
            assert [f.sequence for f in viewer.frames] == [1]
            assert viewer.error is not None and viewer.error.code is ErrorCode.BAD_MAGIC
            (record,) = s.faults(action="corrupted")
            assert record["frame"]["seq"] == 2 and record["before"] == "4c"

    run(body())


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"target": "header", "offset": 2, "value": 9}, ErrorCode.BAD_FRAME_TYPE),
        ({"target": "header", "offset": 3, "value": 0x80}, ErrorCode.BAD_FLAGS),
    ],
)
def test_corrupt_header_fields(spec: dict[str, object], code: ErrorCode) -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "corrupt", **spec})
            viewer, primary = await s.connect()
            await primary.send(STATE)
            await viewer.recv_until(lambda v: v.error is not None)
            assert viewer.error is not None and viewer.error.code is code

    run(body())


def test_corrupt_payload_changes_bytes_not_framing() -> None:
    async def body() -> None:
        async with proxied(seed=3) as s:
            s.proxy.add_fault({"type": "corrupt", "frame_types": ["VIDEO"], "length": 4})
            viewer, primary = await s.connect()
            sent = video(1, 1, size=32)
            await primary.send(sent)
            (got,) = await viewer.recv(1)
            pairs = enumerate(zip(sent.payload, got.payload, strict=True))
            diff = [i for i, (a, b) in pairs if a != b]
            record = s.faults(action="corrupted")[0]
            assert diff == list(range(record["offset"], record["offset"] + 4))

    run(body())


def test_truncate_sends_part_of_a_frame_then_closes() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "truncate", "direction": "p2v", "keep_bytes": 10,
                               "after_frames": 1})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2), video(1, 3))
            await viewer.recv_until_closed()
            assert bytes(viewer.raw) == encode_frame(video(1, 1)) + encode_frame(video(1, 2))[:10]
            assert viewer.decoder.buffered == 10
            await primary.recv_until_closed()  # the Primary's side is closed too
            (record,) = s.faults(action="truncated")
            assert record["keep_bytes"] == 10 and record["frame"]["seq"] == 2

    run(body())


def test_stall_holds_then_releases_in_order() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "stall", "direction": "p2v", "duration": 0.3})
            viewer, primary = await s.connect()
            t0 = asyncio.get_running_loop().time()
            await primary.send(STATE, *(video(1, n) for n in range(5)))
            # The Viewer's direction still works while p2v is stalled.
            await viewer.send(control(Heartbeat()))
            await primary.recv(1)
            await viewer.recv(6)
            assert [name_of(f) for f in viewer.frames][:2] == ["STREAM_STATE", "VIDEO(1:0)"]
            assert [f.sequence for f in viewer.frames[1:]] == list(range(5))
            assert viewer.arrivals[0].t - t0 >= 0.28
            assert len(s.faults(action="held")) == 6
            assert s.faults(action="released")[0]["released"] == 6

    run(body())


def test_stall_drop_mode_and_removal() -> None:
    async def body() -> None:
        async with proxied() as s:
            fault_id = s.proxy.add_fault({"type": "stall", "mode": "drop"})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2), STATE)
            await s.wait_faults(3, action="dropped")
            s.proxy.remove_fault(fault_id)
            await primary.send(video(1, 3))
            await viewer.recv(1)
            assert [name_of(f) for f in viewer.frames] == ["VIDEO(1:3)"]

    run(body())


def test_removing_an_open_stall_delivers_what_it_held() -> None:
    async def body() -> None:
        async with proxied() as s:
            fault_id = s.proxy.add_fault({"type": "stall", "direction": "p2v"})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2))
            await s.wait_faults(2, action="held")
            s.proxy.remove_fault(fault_id)
            await primary.send(video(1, 3))
            await viewer.recv(3)
            assert [f.sequence for f in viewer.frames] == [1, 2, 3]
            (removed,) = s.faults(action="removed")
            assert removed["fault_id"] == fault_id and removed["applied"] == 2

    run(body())


def test_fault_added_mid_frame_finishes_that_frame_untouched() -> None:
    async def body() -> None:
        async with proxied() as s:
            viewer, primary = await s.connect()
            data = encode_frame(video(1, 1, size=1000))
            await primary.send_raw(data[:HEADER_SIZE + 100])
            await viewer.raw_until(HEADER_SIZE + 100)
            s.proxy.add_fault({"type": "drop", "frame_types": ["VIDEO"]})
            await primary.send_raw(data[HEADER_SIZE + 100:] + encode_frame(video(1, 2)))
            await primary.send(STATE)
            await viewer.recv(2)
            assert [name_of(f) for f in viewer.frames] == ["VIDEO(1:1)", "STREAM_STATE"]
            assert [r["frame"]["seq"] for r in s.faults(action="dropped")] == [2]

    run(body())


def test_add_and_remove_are_recorded() -> None:
    async def body() -> None:
        async with proxied() as s:
            fault_id = s.proxy.add_fault({"type": "drop", "id": "loss", "frame_types": ["VIDEO"],
                                          "duration": 3.5})
            s.proxy.remove_fault(fault_id)
            added, removed = s.faults()
            assert added["action"] == "added" and added["id"] == "loss"
            assert added["params"] == {"type": "drop", "id": "loss", "frame_types": ["VIDEO"],
                                       "duration": 3.5}
            assert removed["action"] == "removed" and removed["fault_id"] == fault_id
            with pytest.raises(KeyError, match="no frame fault"):
                s.proxy.remove_fault(fault_id)

    run(body())


def test_decoder_sees_exact_bytes_after_clear() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "delay", "delay_ms": 30})
            s.proxy.add_fault({"type": "duplicate", "messages": ["HEARTBEAT"]})
            viewer, primary = await s.connect()
            await primary.send(control(Heartbeat()), video(1, 1))
            await s.wait_faults(2, action="delayed")
            s.proxy.clear()
            await primary.send(video(1, 2))
            await viewer.recv(4)
            assert [name_of(f) for f in viewer.frames] == [
                "HEARTBEAT", "HEARTBEAT", "VIDEO(1:1)", "VIDEO(1:2)"]
            decoder = FrameDecoder()
            decoder.feed(bytes(viewer.raw))
            assert len(decoder.frames()) == 4

    run(body())


def test_inject_sends_control_texts_after_the_matching_frame() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "inject", "direction": "p2v", "messages": ["STREAM_STATE"],
                               "count": 1, "control": ["FUTURE_THING|x=1", "HEARTBEAT|mood=1"]})
            viewer, primary = await s.connect()
            await primary.send(STATE, video(1, 1), STATE)
            await viewer.recv(5)
            assert [name_of(f) for f in viewer.frames] == [
                "STREAM_STATE", "FUTURE_THING", "HEARTBEAT", "VIDEO(1:1)", "STREAM_STATE"]
            (record,) = s.faults(action="injected")
            assert record["control"] == ["FUTURE_THING|x=1", "HEARTBEAT|mood=1"]
            assert record["dir"] == "p2v" and record["frame"]["type"] == "CONTROL"

    run(body())


def test_inject_malformed_frame_is_rejected_by_the_receiver() -> None:
    async def body() -> None:
        async with proxied() as s:
            s.proxy.add_fault({"type": "inject", "direction": "p2v", "frame_types": ["VIDEO"],
                               "count": 1, "malformed": ["unknown_type_5"]})
            viewer, primary = await s.connect()
            await primary.send(video(1, 1), video(1, 2))
            await viewer.recv_until(lambda v: v.error is not None)
            assert [f.sequence for f in viewer.frames] == [1]
            assert viewer.error is not None and viewer.error.code is ErrorCode.BAD_FRAME_TYPE

    run(body())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "inject: give 'control' or 'malformed'"),
        ({"malformed": ["no_such_frame"]}, "inject: unknown malformed frame 'no_such_frame'"),
        ({"control": ["X" * 5000]}, "is too long"),
    ],
)
def test_inject_spec_errors(spec: dict[str, object], message: str) -> None:
    from harness.chaos import FaultSpecError

    with pytest.raises(FaultSpecError, match=message):
        make_fault({"type": "inject", **spec})
