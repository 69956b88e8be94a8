"""A retired Viewer leaves no state behind, and retiring changes no verdict.

A soak kills Viewers and lets them join again under new names (`v07r2`), so the
engine meets a new Viewer name with every kill, hundreds in a night. The soak
retires the old name (`Engine.retire`); after that nothing of it may stay in the
engine's or the monitors' tables. Here a real run of the reference peers (a stall
and its recovery) is replayed as successive incarnations, every other one cut in
the middle of its recovery as a kill cuts it, each retired once it is over:
whatever the engine holds after six of them it held after two, and the verdicts
are those of the same records without retiring.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from harness.checks.engine import Engine
from harness.trace import VIEWER_SIDE, Record
from reference.protocol.states import ViewerState

CONTAINERS = (dict, set, list, deque)


def incarnation(records: list[Record], k: int, start: float, cut: float | None) -> list[Record]:
    """The run again from `start`, its Viewer named `<name>r<k>`, its connections new;
    cut at `cut` seconds in (a kill: the taps close what was open, nothing more comes)."""
    t0 = float(records[0]["t"])
    out: list[Record] = []
    open_conns: dict[tuple[str, str], None] = {}
    for record in records:
        t = float(record["t"]) - t0
        if cut is not None and t > cut:
            break
        r = dict(record, t=start + t)
        if "tap" in r and str(r["tap"]).startswith(VIEWER_SIDE):
            r["tap"] = f"{r['tap']}r{k}"
        if "conn" in r:
            r["conn"] = f"{k}-{r['conn']}"
        if isinstance(r.get("viewer"), str):
            r["viewer"] = f"{r['viewer']}r{k}"
        if r["kind"] == "conn" and "tap" in r:
            key = (str(r["tap"]), str(r["conn"]))
            if r.get("event") == "open":
                open_conns[key] = None
            elif r.get("event") == "close":
                open_conns.pop(key, None)
        out.append(r)
    end = out[-1]["t"]
    for tap, conn in open_conns:  # what a tap writes when it is stopped
        out.append({"t": end, "kind": "conn", "tap": tap, "conn": conn, "event": "close",
                    "reason": "relay stopped"})
    return out


def recovering_at(records: list[Record]) -> float:
    t0 = float(records[0]["t"])
    return next(
        float(r["t"]) - t0
        for r in records
        if r["kind"] == "telemetry" and r.get("state") == ViewerState.RECOVERING.value
    )


def replay(records: list[Record], copies: int, *, retire: bool) -> Engine:
    """`copies` incarnations one after the other (odd ones killed while RECOVERING), each
    retired when it is over if `retire`, then one more that is still running."""
    engine = Engine()
    span = float(records[-1]["t"]) - float(records[0]["t"]) + 5.0
    cut = recovering_at(records) + 0.5  # a keyframe request sent, the stall not over
    for k in range(copies + 1):
        last = k == copies
        copy = incarnation(records, k, k * span, None if last or k % 2 == 0 else cut)
        for record in copy:
            engine.feed(record)
        if retire and not last:
            viewers = {str(r["viewer"]) for r in copy if r["kind"] == "telemetry"}
            for viewer in viewers:
                engine.retire(viewer, float(copy[-1]["t"]))
    # Trace time goes on (other Viewers' records in a soak) past every retirement.
    engine.feed({"t": (copies + 2) * span, "kind": "note", "text": "later"})
    return engine


def held(engine: Engine) -> dict[str, int]:
    """How many entries every table of the engine, its trackers and its monitors holds."""
    objects: dict[str, Any] = {f"monitor {r}": m for r, m in engine.monitors.items()}
    objects.update(
        engine=engine, conns=engine.conns, episodes=engine.episodes, links=engine.links,
        sequencer=engine.sequencer,
    )
    sizes: dict[str, int] = {}
    for name, obj in objects.items():
        for attribute, value in vars(obj).items():
            if isinstance(value, CONTAINERS) and attribute not in (
                "violations", "support", "_window_violations",  # evidence: capped
            ):
                sizes[f"{name}.{attribute}"] = len(value)
    return sizes


def test_a_retired_viewer_leaves_nothing_behind(recorded_trace: list[Record]) -> None:
    after_two, after_six = held(replay(recorded_trace, 2, retire=True)), held(
        replay(recorded_trace, 6, retire=True)
    )
    grew = {k: (after_two.get(k), v) for k, v in after_six.items() if v != after_two.get(k)}
    assert grew == {}
    # Without retiring, the per-Viewer tables grow with every incarnation: the test can tell.
    kept = held(replay(recorded_trace, 6, retire=False))
    assert kept["episodes.current"] == 7 and after_six["episodes.current"] == 1


def test_retiring_changes_no_verdict(recorded_trace: list[Record]) -> None:
    retired = replay(recorded_trace, 6, retire=True).finish()
    kept = replay(recorded_trace, 6, retire=False).finish()
    assert retired == kept
    judged = {v.requirement for v in kept if v.status.value != "NOT_OBSERVED"}
    assert {"WD-1", "WD-2", "STATE-6", "KEY-2"} <= judged
