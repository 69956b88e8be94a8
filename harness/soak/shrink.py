"""Reproduce and shrink: each FAIL's window as a scenario, then delta debugging on it.

A FAIL of requirement R in window w gets `fails/<id>.yaml`: a scenario (the
format of docs/scenarios.md, runnable by `harness run`) holding the nemesis
steps active from one window before w to its end, shifted to start a few
seconds after the Viewers joined, with the Viewers those steps or the evidence
name, the soak's deviations and seed, and `expect: {R: {}}`. Beside it,
`fails/<id>.json` keeps the steps as data.

`harness soak --shrink RUN_DIR/FAIL_ID` runs that scenario; if the window alone
does not FAIL (the FAIL needed history from before it), it widens to every step
since the start of the soak. It then runs it again with subsets
of its steps (ddmin, Zeller and Hildebrandt 2002) until no single step can be
removed without R passing, then tries to tighten the timing (gaps between steps
cut to `COMPACT_GAP`, then durations halved) while R still FAILs, and writes
the result as `fails/<id>.shrunk.yaml`. (The gaps are also cut once before ddmin,
kept if the FAIL survives it, so that every later candidate run is short.)
Every candidate is a real run: a rule broken only sometimes may need
`attempts` > 1.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.checks.verdict import Status
from harness.scenarios.network import Network
from harness.soak.nemesis import NEEDS, Step, incarnation
from harness.soak.testees import INCARNATION, Split

if TYPE_CHECKING:
    from harness.soak.run import SoakResult

LEAD_S = 3.0  # the Viewers reach STREAMING before the first step
TAIL_S = 2.0  # observed after the last step
COMPACT_GAP = 1.0
SCENARIO_MARKER = {"lvs": 2}  # the scenario format version key (see docs/scenarios.md)
VIEWER_ID = re.compile(r"\b(v\d+)(?:r\d+)?\b")  # a Viewer or one of its incarnations


# --- writing a scenario ------------------------------------------------------------


def scenario_dict(
    case: dict[str, Any], steps: Sequence[Step], *, shrunk: bool = False
) -> dict[str, Any]:
    """The scenario for these steps of a FAIL case."""
    requirement = case["requirement"]
    start = min((s.at for s in steps), default=0.0)
    timeline: list[tuple[float, int, dict[str, Any]]] = []
    for order, step in enumerate(steps):
        at = LEAD_S + step.at - start
        for a in step.begin:
            timeline.append((at, order, a))
        for a in step.end:
            timeline.append((at + step.duration, order, a))
    timeline.sort(key=lambda e: (e[0], e[1]))
    joins: dict[str, int] = {}
    manual: dict[str, bool] = {}  # Viewer name -> joins by a step (else at the start)
    acts: list[tuple[float, dict[str, Any]]] = []
    for at, _, a in timeline:
        base = a["with"].get("viewer")
        if base is not None:
            if a["do"] == "join":
                joins[base] = joins.get(base, 0) + 1
                manual[incarnation(base, joins[base])] = True
            elif base not in joins:
                joins[base] = 1
                manual[base] = False
            a = {"do": a["do"], "with": {**a["with"], "viewer": incarnation(base, joins[base])}}
        acts.append((at, a))
    for base in case["viewers"]:
        manual.setdefault(base, False)
    if not manual:
        manual[case["fallback_viewer"]] = False
    # The soak's external Viewers: in every reproduction, as they were in every window.
    external: dict[str, str] = case.get("external_viewers") or {}
    for vid in external:
        manual.setdefault(vid, False)
    # Only the injectors the steps use: a shorter path is a smaller reproduction.
    path = [hop for hop in case["path"]
            if any(NEEDS.get(a["do"]) == hop for s in steps for a in s.begin)]
    last = max((e[0] for e in timeline), default=LEAD_S)
    data: dict[str, Any] = {
        **SCENARIO_MARKER,
        "description": (
            f"{'Shrunk from' if shrunk else 'The window of'} soak seed {case['seed']}, "
            f"{case['id']}: {requirement} failed ({case['summary']})."
        ),
        "covers": [requirement],
        "timeout": round(last + TAIL_S + 30, 1),
        "seed": case["seed"],
        "primary": _primary(case),
        "viewers": [
            {
                "id": v,
                **({"kind": "external", "command": external[INCARNATION.sub("", v)]}
                   if INCARNATION.sub("", v) in external else {
                    "decode": VIEWER_ID.sub(r"\1", v) in case["decoding"],
                    "deviations": list(case["viewer_deviations"])}),
                **({"join": "manual"} if late else {}),
            }
            for v, late in sorted(manual.items())
        ],
        "path": path,
        "timeline": [
            {"at": round(at, 3), "do": a["do"], **({"with": a["with"]} if a["with"] else {})}
            for at, a in acts
        ] + [{"hold": TAIL_S}],
        "expect": {requirement: {}},
    }
    return data


def _primary(case: dict[str, Any]) -> dict[str, Any]:
    """The reference Primary with the soak's deviations, or the soak's external one."""
    if "primary_command" not in case:
        return {"deviations": list(case["primary_deviations"])}
    command, control = case["primary_command"], case.get("primary_control")
    # No command: a device at the soak's --primary-address, started by hand.
    return {"kind": "external", **({"command": command} if command else {}),
            **({"control": control} if control else {})}


def write_scenario(path: Path, data: dict[str, Any]) -> str:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    path.write_text(text, encoding="utf-8")
    return text


def write_reproductions(result: SoakResult) -> None:
    """A scenario and a case file for every FAIL of the run."""
    if not result.fails:
        return
    folder = result.directory / "fails"
    folder.mkdir(exist_ok=True)
    window = result.profile.scaled_window()
    for fail in result.fails:
        where = " ".join(str(e.get("where", "")) + " " + str(e.get("what", ""))
                         for e in fail["evidence"])
        steps = result.schedule.overlapping(fail["start"] - window, fail["end"])
        case = {
            "id": fail["id"],
            "requirement": fail["requirement"],
            "summary": fail["summary"],
            "seed": result.seed,
            "viewers": sorted(set(VIEWER_ID.findall(where))),
            "fallback_viewer": result.schedule.initial[0] if result.schedule.initial else "v01",
            "decoding": result.schedule.decoding,
            "path": result.profile.path,
            "primary_deviations": result.profile.primary_deviations,
            "viewer_deviations": result.profile.viewer_deviations,
            **result.reproduce_testees,
            "steps": [s.as_dict() for s in steps],
            # The steps before the window: a FAIL may need history (e.g. the epochs a
            # Primary announced before it restarted), and shrinking may widen to them.
            "earlier": [s.as_dict() for s in result.schedule.steps
                        if s.at < (min((x.at for x in steps), default=fail["start"]))],
        }
        (folder / f"{fail['id']}.json").write_text(json.dumps(case, indent=1))
        text = write_scenario(folder / f"{fail['id']}.yaml",
                              scenario_dict(case, steps))
        fail["reproduction"] = str(folder / f"{fail['id']}.yaml")
        fail["shrink_arg"] = str(result.directory / fail["id"])
        fail["scenario_text"] = text


# --- running a candidate -------------------------------------------------------------


def load_tolerant(path: Path) -> Any:
    """Load a scenario, dropping the format marker if this loader does not know it yet."""
    from harness.scenarios.loader import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "lvs" not in str(exc) or "lvs" not in data:
            raise
        data.pop("lvs")
        bare = path.with_suffix(".bare.yaml")
        bare.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        scenario = load_scenario(bare)
        return replace(scenario, name=path.stem, path=path)


def fails_on(
    requirement: str, scenario_path: Path, workdir: Path, split: Split | None = None,
    network: Network | None = None,
) -> bool:
    """The reproduction FAILs on `requirement`; with an external peer (`split`), the
    testee's records FAIL it and the reference peers' FAIL none of theirs. `network`:
    the soak's --listen/--primary-address..., where a testee is a device."""
    from harness.scenarios.runner import expected_verdicts, run_scenario

    scenario = load_tolerant(scenario_path)
    judge = split.judge() if split is not None else expected_verdicts
    result = run_scenario(scenario, workdir, scenario.seed or 0, judge, network=network)
    return any(v.requirement == requirement and v.status is Status.FAIL for v in result.verdicts)


Test = Callable[[list[Step]], bool]


def ddmin(items: list[Step], test: Test) -> list[Step]:
    """The 1-minimal failing subset of `items` (test(items) is taken to fail)."""
    if test([]):
        return []
    n = 2
    while len(items) >= 2:
        size = len(items) / n
        chunks = [items[round(i * size):round((i + 1) * size)] for i in range(n)]
        chunks = [c for c in chunks if c]
        for chunk in chunks:
            if test(chunk):
                items, n = chunk, 2
                break
        else:
            for i in range(len(chunks)):
                complement = [s for j, c in enumerate(chunks) if j != i for s in c]
                if test(complement):
                    items, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= len(items):
                    break
                n = min(len(items), 2 * n)
    return items


def compact(steps: list[Step]) -> list[Step]:
    """The same steps in the same order, gaps between their starts cut to COMPACT_GAP."""
    out: list[Step] = []
    at = 0.0
    previous: Step | None = None
    for step in sorted(steps, key=lambda s: s.at):
        if previous is not None:
            at += min(COMPACT_GAP, step.at - previous.at)
        out.append(replace(step, at=round(at, 3)))
        previous = step
    return out


def halve(steps: list[Step]) -> list[Step]:
    return [replace(s, duration=round(s.duration / 2, 3)) for s in steps]


def shrink(case_path: Path, *, attempts: int = 1, log: Callable[[str], None] = print) -> Path:
    """Shrink one FAIL case; returns the path of the shrunk scenario."""
    case = json.loads(case_path.read_text())
    requirement = case["requirement"]
    steps = [Step.from_dict(s) for s in case["steps"]]
    folder = case_path.parent
    split = Split.of_case(case)
    network = Network.from_options(**case["network"]) if case.get("network") else None
    runs = 0
    seen: dict[tuple[tuple[str, float, float], ...], bool] = {}

    def test(candidate: list[Step]) -> bool:
        key = tuple((s.id, s.at, s.duration) for s in candidate)
        if key not in seen:  # ddmin asks some subsets twice; each answer costs a run
            seen[key] = run(candidate)
        return seen[key]

    def run(candidate: list[Step]) -> bool:
        nonlocal runs
        with tempfile.TemporaryDirectory(prefix="lvs-shrink-") as tmp:
            scenario = Path(tmp) / f"{case['id']}-candidate.yaml"
            write_scenario(scenario, scenario_dict(case, candidate, shrunk=True))
            for attempt in range(attempts):
                runs += 1
                failing = fails_on(requirement, scenario, Path(tmp) / f"run{attempt}", split,
                                   network)
                if failing:
                    break
        ids = ", ".join(s.id for s in candidate) or "no step"
        log(f"shrink run {runs}: [{ids}] -> {requirement} {'FAIL' if failing else 'no FAIL'}")
        return failing

    if not test(steps):
        earlier = [Step.from_dict(s) for s in case.get("earlier", [])]
        whole = earlier + steps
        log(f"{case['id']}: the window alone does not FAIL; widening to the "
            f"{len(whole)} step(s) since the start")
        if earlier and test(compact(whole)):
            steps = compact(whole)
        elif earlier and test(whole):
            steps = whole
        else:
            raise ShrinkError(
                f"{case['id']}: neither the window nor the run up to it FAILs on "
                f"{requirement} (tried {attempts} time(s) each); nothing to shrink"
            )
    # Tighter timing first when it still fails: every later candidate run is then shorter.
    candidate = compact(steps)
    if candidate != steps and test(candidate):
        steps = candidate
    steps = ddmin(steps, test)
    for tighten in (compact, halve):
        candidate = tighten(steps)
        if candidate != steps and test(candidate):
            steps = candidate
    out = folder / f"{case['id']}.shrunk.yaml"
    write_scenario(out, scenario_dict(case, steps, shrunk=True))
    log(f"shrunk {case['id']} to {len(steps)} step(s) after {runs} run(s): {out}")
    return out


class ShrinkError(RuntimeError):
    pass


def shrink_command(target: Path, attempts: int = 1) -> int:
    """`--shrink RUN_DIR/FAIL_ID`."""
    case_path = target.parent / "fails" / f"{target.name}.json"
    if not case_path.exists():
        print(f"harness soak: no FAIL {target.name!r} in {target.parent} "
              f"(looked for {case_path})", file=sys.stderr)
        return 2
    try:
        shrink(case_path, attempts=attempts)
    except ShrinkError as exc:
        print(f"harness soak: {exc}", file=sys.stderr)
        return 1
    return 0
