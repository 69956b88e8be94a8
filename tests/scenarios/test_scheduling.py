"""Longest-first xdist scheduling: the long scenarios spread over workers."""

from __future__ import annotations

from pathlib import Path

from harness.scenarios.loader import declared_timing
from harness.scenarios.scheduling import LongestFirstScheduling
from tests.scenarios.suite_runs import ROOT

DURATIONS = {"a": 1.0, "b": 9.0, "c": 3.0, "d": 7.0, "e": 5.0, "f": 2.0}
IDS = [f"{name}.yaml::{name}" for name in DURATIONS]


class Node:
    """Stands in for xdist's WorkerController: records what it was sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += [IDS[i].split("::")[1] for i in indices]

    def shutdown(self) -> None:
        self.shutting_down = True


class Config:
    """The little of pytest.Config that xdist's LoadScheduling reads."""

    rootpath = ROOT

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def getvalue(self, name: str) -> object:
        return {"tx": [f"{self.workers}*popen"], "numprocesses": None}.get(name)

    def getoption(self, name: str) -> object:
        return None


def scheduler(*nodes: Node) -> LongestFirstScheduling:
    sched = LongestFirstScheduling(Config(len(nodes)))  # type: ignore[arg-type]
    sched.expected = lambda nodeid: DURATIONS[nodeid.split("::")[1]]
    for node in nodes:
        sched.add_node(node)
    return sched


def collected(sched: LongestFirstScheduling, *nodes: Node) -> None:
    """Like xdist's DSession: schedule once every worker has collected."""
    for node in nodes:
        assert not sched.collection_is_completed
        sched.add_node_collection(node, IDS)
    assert sched.collection_is_completed
    sched.schedule()


def test_each_worker_starts_with_the_longest_and_the_shortest_left() -> None:
    one, two, three = Node("one"), Node("two"), Node("three")
    sched = scheduler(one, two, three)
    collected(sched, one, two, three)
    assert (one.sent, two.sent, three.sent) == (["b", "a"], ["d", "f"], ["e", "c"])
    assert all(node.shutting_down for node in (one, two, three))


def test_a_worker_that_finishes_gets_the_longest_left() -> None:
    one, two = Node("one"), Node("two")
    sched = scheduler(one, two)
    collected(sched, one, two)
    assert (one.sent, two.sent) == (["b", "a"], ["d", "f"])
    sched.mark_test_complete(two, IDS.index("d.yaml::d"))
    assert two.sent == ["d", "f", "e"]
    sched.mark_test_complete(one, IDS.index("b.yaml::b"))
    assert one.sent == ["b", "a", "c"] and one.shutting_down


def test_expected_durations_order_the_shipped_suite_sensibly() -> None:
    """Long, timer-bound scenarios are estimated longer than the quick ones."""
    estimate = {p.stem: declared_timing(p).expected for p in (ROOT / "scenarios").glob("*.yaml")}
    assert estimate["keyframe-retries-exhausted"] > estimate["wrong-secret"]
    assert estimate["pause-resume"] > estimate["replayed-answer"]
    assert all(value > 0 for value in estimate.values())


def test_broken_files_get_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("lvs: 2\ntimeout: [\n")
    timing = declared_timing(path)
    assert timing.timeout == 60 and timing.expected == 0
