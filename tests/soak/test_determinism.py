"""The same seed gives the same schedule, the same actions and the same verdicts."""

from __future__ import annotations

from harness.soak.nemesis import KINDS, Schedule, draw_schedule
from harness.soak.profile import load_profile
from harness.soak.run import SoakResult


def _draw(seed: int) -> Schedule:
    profile = load_profile("smoke")
    return draw_schedule(
        seed=seed,
        duration=profile.duration,
        viewers=20,
        decoding=2,
        late_joiners=profile.late_joiners,
        every=profile.every,
        start_after=profile.start_after,
        faults=[(f.kind, f.weight, f.duration) for f in profile.faults],
        path=profile.path,
    )


def test_same_seed_same_schedule() -> None:
    first, again, other = _draw(1), _draw(1), _draw(2)
    assert first.as_dict() == again.as_dict()
    assert first.describe() == again.describe()
    assert first.as_dict() != other.as_dict()
    # Stored and read back, it is the same schedule.
    assert Schedule.from_dict(first.as_dict()).as_dict() == first.as_dict()


def test_schedule_is_bounded_and_varied() -> None:
    schedule = _draw(3)
    assert len(schedule.steps) >= 20
    kinds = {s.kind for s in schedule.steps}
    assert len(kinds) >= 10, kinds
    assert kinds <= set(KINDS)
    for step in schedule.steps:
        assert step.at >= 0 and step.until <= schedule.duration, step.describe()
    # Steps of one exclusive group never overlap.
    stream = sorted((s for s in schedule.steps if KINDS[s.kind][0] == "stream"), key=lambda s: s.at)
    for a, b in zip(stream, stream[1:], strict=False):
        assert a.until <= b.at, (a.describe(), b.describe())


def test_same_seed_same_actions_and_verdicts(reference_runs: list[SoakResult]) -> None:
    first, second = reference_runs
    assert first.schedule.as_dict() == second.schedule.as_dict()
    assert [(e["step"], e["do"], e["with"]) for e in first.executed] == [
        (e["step"], e["do"], e["with"]) for e in second.executed
    ]
    assert first.executed, "the nemesis did nothing"
    assert [(v.requirement, v.status) for v in first.verdicts] == [
        (v.requirement, v.status) for v in second.verdicts
    ]
    assert [(d.limit.name, d.status) for d in first.drift] == [
        (d.limit.name, d.status) for d in second.drift
    ]
