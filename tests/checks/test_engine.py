"""The engine's own rules: order, bounded memory, timers, windows."""

from __future__ import annotations

import gc

from harness.checks.engine import Engine, check_records
from harness.checks.order import Sequencer, in_order
from harness.checks.verdict import Status
from harness.trace import Record
from tests.checks.cases import all_cases

CASES, _ = all_cases()


def rec(t: float, kind: str = "note", **fields: object) -> Record:
    return {"t": t, "kind": kind, **fields}


def test_a_sources_records_keep_their_written_order_whatever_the_timestamps() -> None:
    a1 = rec(1.0, "frame", tap="x", conn="c", n=1)
    a2 = rec(0.5, "frame", tap="x", conn="c", n=2)  # stamped earlier, written later
    b = rec(0.7, "frame", tap="y", conn="c", n=3)
    order = [r["n"] for r in in_order([a1, a2, b])]
    assert order.index(1) < order.index(2)
    assert order == [3, 1, 2]


def test_sources_are_merged_by_time_and_ties_keep_arrival_order() -> None:
    records = [
        rec(2.0, "telemetry", viewer="v", n=1),
        rec(1.0, "frame", tap="x", conn="c", n=2),
        rec(1.0, "frame", tap="x", conn="c", n=3),
        rec(1.5, "telemetry", viewer="w", n=4),
    ]
    assert [r["n"] for r in in_order(records)] == [2, 3, 4, 1]


def test_the_sequencer_holds_only_its_lag_and_counts_late_records() -> None:
    sequencer = Sequencer(lag=1.0)
    released = []
    for i in range(100):
        released += sequencer.push(rec(float(i), "frame", tap="x", conn="c", n=i))
        assert len(sequencer) <= 2
    released += sequencer.push(rec(10.0, "telemetry", viewer="v", n=-1))  # long overtaken
    assert sequencer.late == 1 and released[-1]["n"] == -1
    released += list(sequencer.drain())
    assert len(released) == 101


def test_timers_fire_once_trace_time_passes_them_and_not_after_the_end() -> None:
    engine = Engine({})
    fired: list[float] = []
    engine.at(1.5, fired.append)
    engine.at(9.0, fired.append)
    for t in (0.0, 1.0, 2.0, 3.0):
        engine.feed(rec(t))
    engine.finish()
    assert fired == [1.5]


def test_requested_order_is_the_verdict_order_and_unknown_ids_are_not_observed() -> None:
    verdicts = check_records([], {"KEY-2": {}, "NOPE-1": {}, "EPOCH-2": {}})
    assert [v.requirement for v in verdicts] == ["KEY-2", "NOPE-1", "EPOCH-2"]
    assert [v.status for v in verdicts] == [Status.NOT_OBSERVED] * 3


def test_windows_report_only_what_was_judged_since_the_last_window() -> None:
    broken = CASES["KEY-2"](True).records
    engine = Engine({"KEY-2": {}})
    for record in broken:
        engine.feed(record)
    engine.finish()
    (first,) = engine.window()
    (second,) = engine.window()
    assert first.status is Status.FAIL
    assert second.status is Status.NOT_OBSERVED
    (overall,) = [engine.monitors["KEY-2"].verdict()]
    assert overall.status is Status.FAIL


def test_memory_follows_live_connections_not_trace_length() -> None:
    """Hundreds of finished connections later, the engine holds no more objects than before.

    Counted as live objects (gc), not bytes: the interpreter's free lists keep freed
    blocks allocated for a while, which a byte count would mistake for growth.
    """
    one = CASES["KEY-2"](False).records
    span = one[-1]["t"] + 1.0
    engine = Engine(None)

    def copy(k: int) -> None:
        for record in one:
            shifted = dict(record, t=record["t"] + k * span)
            if "conn" in shifted:
                shifted["conn"] = f"{shifted['conn']}-{k}"
            engine.feed(shifted)
        engine.feed(rec(k * span + span - 0.5, "conn", tap="primary_side", conn=f"c1-{k}",
                        event="close", reason=""))

    def live_objects() -> int:
        gc.collect()
        return len(gc.get_objects())

    for k in range(50):
        copy(k)
    before = live_objects()
    for k in range(50, 550):
        copy(k)
    after = live_objects()
    assert after - before < 100, (before, after)


def test_the_sequencer_releases_what_one_heap_of_all_records_would() -> None:
    """The in-order FIFO and the out-of-order heap merge into one heap's order (seed 8)."""
    import heapq
    import random

    rng = random.Random(8)
    records = []
    for n in range(2000):
        source = rng.choice(["a", "b", "c"])
        jitter = rng.choice([0.0, 0.0, 0.0, -rng.random() * 3])  # some arrive late
        records.append(rec(n * 0.01 + jitter, "frame", tap=source, conn="c", n=n))
    sequencer = Sequencer(lag=1.0)
    released = []
    for record in records:
        released += sequencer.push(record)
    released += list(sequencer.drain())

    # The reference: one heap keyed (source-clamped time, arrival), released the same way.
    heap: list[tuple[float, int, int]] = []
    newest = last_released = float("-inf")
    source_time: dict[str, float] = {}
    expected = []
    for arrival, record in enumerate(records):
        key = max(record["t"], source_time.get(record["tap"], float("-inf")))
        source_time[record["tap"]] = key
        if key < last_released:
            expected.append(record["n"])
            continue
        heapq.heappush(heap, (key, arrival, record["n"]))
        newest = max(newest, key)
        while heap and heap[0][0] <= newest - 1.0:
            last_released, _, n = heapq.heappop(heap)
            expected.append(n)
    expected += [n for _, _, n in sorted(heap)]
    assert [r["n"] for r in released] == expected
    assert sequencer.late > 0
