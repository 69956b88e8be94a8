"""The nemesis: a seeded schedule of faults and actions, drawn from a profile.

In the spirit of Jepsen's nemesis, but decided up front: every step has a start
and a bounded duration, and the whole schedule follows from the profile, the
run's length, the Viewer ids and the seed alone, so it can be printed before the
run, stored beside the report and drawn again to reproduce the run.

A step is written in the scenario vocabulary (docs/scenarios.md): its `begin`
and `end` are `do` actions with their `with` arguments, so the window around a
FAIL can be written out as a scenario file that `harness run` accepts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reference.protocol.frames import FrameType
from reference.protocol.messages import StreamAccepted, StreamStateMessage

Act = dict[str, Any]  # {"do": action, "with": {arguments}}

# Resolutions a reconfiguration picks from, with their middle bitrate (all small: the soak
# is about time, not pixels).
RESOLUTIONS = ((320, 180, 300_000), (426, 240, 400_000), (640, 360, 600_000))


def act(do: str, **args: Any) -> Act:
    return {"do": do, "with": args}


@dataclass(frozen=True)
class Draw:
    """What a step builder gets: the generator, the step's id and its duration."""

    rng: random.Random
    id: str
    duration: float
    viewers: Sequence[str]


Builder = Callable[[Draw], tuple[list[Act], list[Act]]]


def _toxic(kind: str, attributes: Callable[[random.Random], dict[str, Any]]) -> Builder:
    def build(d: Draw) -> tuple[list[Act], list[Act]]:
        begin = act(
            "toxic", name=d.id, type=kind, stream="downstream", attributes=attributes(d.rng)
        )
        return [begin], [act("remove_toxic", name=d.id)]

    return build


def _frame_fault(kind: str, params: Callable[[random.Random], dict[str, Any]]) -> Builder:
    def build(d: Draw) -> tuple[list[Act], list[Act]]:
        return [act("fault", id=d.id, type=kind, **params(d.rng))], [act("remove_fault", id=d.id)]

    return build


def _toggle(on: str, off: str) -> Builder:
    def build(d: Draw) -> tuple[list[Act], list[Act]]:
        return [act(on)], [act(off)]

    return build


def _reconfigure(d: Draw) -> tuple[list[Act], list[Act]]:
    width, height, base = d.rng.choice(RESOLUTIONS)
    # A bitrate tier around the resolution's own, in 10 kb/s steps: many distinct targets,
    # as a field deployment's adaptive ladder has (and a bug may hit only some of them).
    bitrate = d.rng.randrange(base // 2, 2 * base + 1, 10_000)
    return [act("reconfigure", width=width, height=height, bitrate=bitrate)], []


def _restart_encoder(d: Draw) -> tuple[list[Act], list[Act]]:
    return [act("restart_encoder", settle=round(d.rng.uniform(0, 0.5), 3))], []


def _restart_primary(d: Draw) -> tuple[list[Act], list[Act]]:
    # The Primary is away for the step's duration, then listens on the same port again.
    return [act("restart_primary", down_for=round(d.duration, 3))], []


def _impair(d: Draw) -> tuple[list[Act], list[Act]]:
    # A lossy, delayed cellular-like link on the packet hop, cleared at the step's end.
    direction = d.rng.choice(["both", "downstream", "upstream"])
    args: dict[str, Any] = {
        "direction": direction,
        "loss": round(d.rng.uniform(0.005, 0.08), 3),
        "delay_ms": d.rng.randint(10, 150),
        "jitter_ms": d.rng.randint(0, 20),
    }
    if d.rng.random() < 0.3:
        args["duplicate"] = round(d.rng.uniform(0.005, 0.03), 3)
    return [act("impair", **args)], [act("clear_impairment", direction=direction)]


def _kill(d: Draw) -> tuple[list[Act], list[Act]]:
    return (
        [act("kill_viewer", viewer=v) for v in d.viewers],
        [act("join", viewer=v) for v in d.viewers],
    )


VIDEO = [FrameType.VIDEO.name]

# kind -> (exclusive group, how many Viewers it takes, builder). Steps of one group never
# overlap: two stream-state changes at once would test the schedule, not the peers.
KINDS: dict[str, tuple[str, int, Builder]] = {
    "latency": ("", 0, _toxic("latency", lambda r: {
        "latency": r.randint(50, 400), "jitter": r.randint(0, 100)})),
    "bandwidth": ("", 0, _toxic("bandwidth", lambda r: {"rate": r.randint(16, 200)})),
    "timeout": ("", 0, _toxic("timeout", lambda r: {"timeout": r.randint(500, 3000)})),
    "reset_peer": ("", 0, _toxic("reset_peer", lambda r: {"timeout": r.randint(0, 2000)})),
    "slicer": ("", 0, _toxic("slicer", lambda r: {
        "average_size": r.randint(64, 512), "size_variation": 32, "delay": r.randint(0, 100)})),
    "slow_close": ("", 0, _toxic("slow_close", lambda r: {"delay": r.randint(500, 3000)})),
    "disable_proxy": ("proxy", 0, _toggle("disable_proxy", "enable_proxy")),
    "drop": ("", 0, _frame_fault("drop", lambda r: {
        "direction": "p2v", "frame_types": VIDEO, "probability": round(r.uniform(0.02, 0.3), 3)})),
    "delay": ("", 0, _frame_fault("delay", lambda r: {
        "direction": "p2v", "frame_types": VIDEO, "delay_ms": r.randint(20, 300),
        "jitter_ms": r.randint(0, 20)})),
    "reorder": ("", 0, _frame_fault("reorder", lambda r: {
        "direction": "p2v", "hold": [StreamStateMessage.NAME], "until": [StreamAccepted.NAME],
        "count": 1})),
    "stale_epoch": ("", 0, _frame_fault("stale_epoch", lambda r: {
        "direction": "p2v", "count": r.randint(1, 5), "inject_after": r.randint(0, 8)})),
    "corrupt": ("", 0, _frame_fault("corrupt", lambda r: {
        "direction": "p2v", "frame_types": VIDEO, "target": "header", "count": 1})),
    "reconfigure": ("stream", 0, _reconfigure),
    "restart_encoder": ("stream", 0, _restart_encoder),
    "restart_primary": ("stream", 0, _restart_primary),
    "pause": ("stream", 0, _toggle("pause", "resume")),
    "stop_stream": ("stream", 0, _toggle("stop_stream", "start_stream")),
    "kill_viewer": ("", 1, _kill),
    "reconnect_storm": ("", -1, _kill),  # -1: a quarter of the population, at least two
    "late_join": ("", 0, lambda d: ([act("join", viewer=v) for v in d.viewers], [])),
    "impair": ("packet", 0, _impair),
}

# Which injector a step needs on the path.
NEEDS = {
    "toxic": "toxiproxy", "disable_proxy": "toxiproxy", "fault": "frame_proxy",
    "impair": "packet",
}


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    at: float
    duration: float
    begin: tuple[Act, ...]
    end: tuple[Act, ...] = ()

    @property
    def until(self) -> float:
        return self.at + self.duration

    def describe(self) -> str:
        acts = "; ".join(_describe(a) for a in self.begin)
        return f"{self.at:9.3f} s +{self.duration:7.3f} s  {self.id} {self.kind}: {acts}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "at": self.at,
            "duration": self.duration,
            "begin": list(self.begin),
            "end": list(self.end),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            str(data["id"]),
            str(data["kind"]),
            float(data["at"]),
            float(data["duration"]),
            tuple(data["begin"]),
            tuple(data.get("end", ())),
        )

    def viewers(self) -> set[str]:
        return {str(a["with"]["viewer"]) for a in (*self.begin, *self.end)
                if "viewer" in a["with"]}


def _describe(a: Act) -> str:
    args = ", ".join(f"{k}={v}" for k, v in a["with"].items())
    return f"{a['do']}({args})"


@dataclass
class Schedule:
    seed: int
    duration: float
    initial: list[str]  # Viewers that join at the start
    decoding: list[str]  # Viewers that decode (the rest are header-only)
    steps: list[Step] = field(default_factory=list)
    # Kinds of the profile the nemesis did not draw from, each with the reason (a step the
    # peers given cannot be delivered is left out, never drawn and then skipped).
    left_out: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [
            f"nemesis schedule: seed {self.seed}, {len(self.steps)} step(s) over "
            f"{self.duration:g} s, {len(self.initial)} Viewer(s) at the start "
            f"({len(self.decoding)} decoding)"
        ]
        for reason in dict.fromkeys(self.left_out.values()):
            kinds = [k for k, r in self.left_out.items() if r == reason]
            lines.append(f"  not drawn: {', '.join(kinds)}: {reason}")
        lines += [s.describe() for s in self.steps]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "duration": self.duration,
            "initial": self.initial,
            "decoding": self.decoding,
            "steps": [s.as_dict() for s in self.steps],
            "left_out": self.left_out,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            int(data["seed"]),
            float(data["duration"]),
            list(data["initial"]),
            list(data["decoding"]),
            [Step.from_dict(s) for s in data["steps"]],
            dict(data.get("left_out", {})),
        )

    def overlapping(self, start: float, end: float) -> list[Step]:
        return [s for s in self.steps if s.at < end and s.until >= start]


def incarnation(vid: str, number: int) -> str:
    """The name of a Viewer's n-th join: a killed Viewer that joins again is a new Viewer
    (new process state, new telemetry identity, new tap), not a reconnect of the old one."""
    return vid if number <= 1 else f"{vid}r{number}"


def viewer_ids(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"v{i:0{width}d}" for i in range(1, count + 1)]


def draw_schedule(
    *,
    seed: int,
    duration: float,
    viewers: int,
    decoding: int,
    late_joiners: float,
    every: float,
    start_after: float,
    faults: Sequence[tuple[str, float, tuple[float, float]]],
    path: Sequence[str],
    external: Sequence[str] = (),
) -> Schedule:
    """The schedule for these settings; the same arguments always give the same schedule.

    `external` Viewers (harness/soak/testees.py) join at the start, outside the schedule,
    and are killed and rejoined by its Viewer steps like the population's."""
    rng = random.Random(f"lvs-soak-nemesis:{seed}")
    ids = viewer_ids(viewers)
    decoding_ids = ids[: min(decoding, viewers)]
    header_only = ids[len(decoding_ids):]
    late = sorted(rng.sample(header_only, int(len(header_only) * late_joiners)))
    tail = min(5.0, 0.1 * duration)  # nothing starts in the last moments: let them settle
    latest = max(start_after, duration - tail)
    busy: dict[str, float] = {}  # Viewer id or exclusive group -> busy until
    steps: list[Step] = []
    for vid in late:
        at = round(rng.uniform(start_after, max(start_after, duration / 2)), 3)
        busy[vid] = at
        steps.append(Step(f"join-{vid}", "late_join", at, 0.0, (act("join", viewer=vid),)))
    usable = [f for f in faults if f[1] > 0 and _available(f[0], path)]
    t = start_after
    number = 0
    while usable:
        t += rng.uniform(0.5 * every, 1.5 * every)
        if t >= latest:
            break
        kind, _, (low, high) = rng.choices(usable, weights=[f[1] for f in usable])[0]
        group, takes, build = KINDS[kind]
        if group and busy.get(group, 0.0) > t:
            continue
        length = round(min(rng.uniform(low, high), max(0.0, latest - t)), 3)
        chosen: list[str] = []
        if takes:
            free = [v for v in (*ids, *external) if busy.get(v, 0.0) <= t]
            want = takes if takes > 0 else max(2, (len(ids) + len(external)) // 4)
            if len(free) < want:
                continue
            chosen = sorted(rng.sample(free, want))
        number += 1
        step_id = f"n{number:03d}"
        begin, end = build(Draw(rng, step_id, length, chosen))
        at = round(t, 3)
        steps.append(Step(step_id, kind, at, length, tuple(begin), tuple(end)))
        for key in (group, *chosen) if group else chosen:
            busy[key] = at + length + 0.5
    steps.sort(key=lambda s: (s.at, s.id))
    initial = [v for v in ids if v not in late]
    return Schedule(seed, duration, initial, decoding_ids, steps)


def _available(kind: str, path: Sequence[str]) -> bool:
    _, _, build = KINDS[kind]
    begin, _ = build(Draw(random.Random(0), "probe", 1.0, ["probe"]))
    return all(NEEDS[a["do"]] in path for a in begin if a["do"] in NEEDS)
