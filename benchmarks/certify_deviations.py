"""Certify every reference-peer deviation: NOT CONFORMANT on exactly the IDs it breaks?

    python benchmarks/certify_deviations.py [--role viewer|primary] [--deviation NAME ...]
                                            [--scenarios covering|all] [-n 2] [--seed 1]

For each deviation (reference/protocol/deviations.py) it runs, as a user would,

    harness certify ROLE --command "<the reference peer's command> --deviation NAME"

and reads the certificate: the IDs that FAILed, against BREAKS[NAME]. A run is "exact"
when every ID of BREAKS[NAME] FAILed and nothing else did but the IDs CONSEQUENCES[NAME]
allows (the same fault seen by another rule, in some scenarios); the consequences seen
are printed with a "+". First the undeviated reference peer of each chosen role, which
must be CONFORMANT. With `--scenarios covering` (the default) only the scenarios that
cover one of the broken IDs run (`-k`), and every rule of the role is still judged in
them, so an extra FAIL shows; `all` runs every scenario (slow on 2 cores). A broken ID
that no applicable scenario decided is reported as "not exercised", not as a miss of the
checkers.

Prints one row per run: deviation, expected IDs, failed IDs, grade, outcome (exact,
with any consequences seen / missed / extra / not exercised), scenarios run and wall
time. With `--repeat N` each certification runs N times (same seed) and a line per
testee says whether every run gave every ID the same status (the issue's "same verdict
every time").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.certify.reference_testees import reference_commands  # noqa: E402
from harness.scenarios.loader import declared_coverage  # noqa: E402
from reference.protocol.deviations import (  # noqa: E402
    BREAKS,
    CONSEQUENCES,
    DRIFT_DEVIATIONS,
    PRIMARY_DEVIATIONS,
    VIEWER_DEVIATIONS,
    Deviation,
)

COMMANDS = reference_commands()


def role_of(deviation: Deviation) -> str:
    return "primary" if deviation in PRIMARY_DEVIATIONS else "viewer"


def keyword(ids: tuple[str, ...]) -> str | None:
    """A -k expression selecting the scenarios that cover any of `ids`."""
    coverage = declared_coverage(ROOT / "scenarios")
    names = sorted({name for rid in ids for name in coverage.get(rid, [])})
    return " or ".join(names) if names else None


def certify(
    role: str, deviation: Deviation | None, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    command = COMMANDS[role] + (f" --deviation {deviation.value}" if deviation else "")
    expected = BREAKS[deviation] if deviation else ()
    report_dir = out / (deviation.value if deviation else f"reference-{role}")
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "certify",
        role,
        "--command",
        command,
        "--report-dir",
        str(report_dir),
        "-n",
        str(args.workers),
        "--seed",
        str(args.seed),
    ]
    if args.scenarios == "covering" and deviation is not None:
        expr = keyword(expected)
        if expr is None:
            return {
                "deviation": deviation.value,
                "role": role,
                "expected": expected,
                "outcome": "no scenario covers it",
                "failed": (),
                "grade": "-",
                "ran": 0,
                "wall": 0.0,
            }
        argv += ["-k", expr]
    elif args.keyword:
        argv += ["-k", args.keyword]
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.monotonic() - started
    path = report_dir / "certificate.json"
    if not path.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        return {
            "deviation": deviation.value if deviation else f"(none: {role})",
            "role": role,
            "expected": expected,
            "failed": (),
            "grade": f"exit {done.returncode}",
            "outcome": f"no certificate: {' '.join(tail)}",
            "ran": 0,
            "wall": wall,
        }
    cert = json.loads(path.read_text())
    statuses = {r["id"]: r["status"] for r in cert["requirements"]}
    failed = tuple(sorted(i for i, s in statuses.items() if s == "FAIL"))
    want = set(expected)
    allowed = want | set(CONSEQUENCES.get(deviation, ())) if deviation else want
    undecided = sorted(i for i in want if statuses.get(i) not in ("FAIL", "PASS"))
    if want <= set(failed) <= allowed and (want or cert["grade"] == "CONFORMANT"):
        outcome = "exact"
        if set(failed) - want:
            outcome += f" +{' +'.join(sorted(set(failed) - want))}"
    elif set(failed) - allowed:
        outcome = f"extra {' '.join(sorted(set(failed) - allowed))}"
    elif undecided and not (want - set(failed) - set(undecided)):
        outcome = f"not exercised {' '.join(undecided)}"
    else:
        outcome = f"missed {' '.join(sorted(want - set(failed)))}"
    if not want and cert["grade"] != "CONFORMANT":
        outcome = f"reference not CONFORMANT ({cert['grade']})"
    return {
        "deviation": deviation.value if deviation else f"(none: {role})",
        "role": role,
        "expected": expected,
        "failed": failed,
        "grade": cert["grade"],
        "outcome": outcome,
        "ran": cert["run"]["scenarios_run"],
        "wall": wall,
        "exit": done.returncode,
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("viewer", "primary"), action="append", default=[])
    parser.add_argument("--deviation", action="append", default=[], metavar="NAME")
    parser.add_argument("--scenarios", choices=("covering", "all"), default="covering")
    parser.add_argument("-k", dest="keyword", default=None, help="with --scenarios all")
    parser.add_argument("-n", dest="workers", default="2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true", help="skip the undeviated runs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each certification")
    parser.add_argument("--out", type=Path, default=None, help="report dirs (default: a temp dir)")
    args = parser.parse_args()
    roles = args.role or ["viewer", "primary"]
    chosen = [Deviation(d) for d in args.deviation] or [
        d
        for d in Deviation
        if d not in DRIFT_DEVIATIONS
        and role_of(d) in roles
        and d in (PRIMARY_DEVIATIONS | VIEWER_DEVIATIONS)
    ]
    out = args.out or Path(tempfile.mkdtemp(prefix="certify-deviations-"))
    print(f"reports under {out}", flush=True)
    runs: list[tuple[str, Deviation | None]] = []
    if not args.no_reference:
        runs += [(role, None) for role in roles]
    runs += [(role_of(d), d) for d in chosen]
    header = (
        f"{'deviation':28} {'role':8} {'expected':18} {'failed':22} {'grade':16} "
        f"{'ran':>4} {'wall':>7}  outcome"
    )
    print(header, flush=True)
    rows = []
    unstable: list[str] = []
    for role, deviation in runs:
        seen: list[dict[str, str]] = []
        for attempt in range(args.repeat):
            where = out / f"run-{attempt}" if args.repeat > 1 else out
            row = certify(role, deviation, args, where)
            rows.append(row)
            seen.append(row.get("statuses", {}))
            print(
                f"{row['deviation']:28} {row['role']:8} {' '.join(row['expected']) or '-':18} "
                f"{' '.join(row['failed']) or '-':22} {row['grade']:16} {row['ran']:>4} "
                f"{row['wall']:6.1f}s  {row['outcome']}",
                flush=True,
            )
        if args.repeat > 1:
            differing = sorted(i for i in seen[0] if len({s.get(i) for s in seen}) > 1)
            name = deviation.value if deviation else f"(none: {role})"
            said = "the same status on every ID" if not differing else f"differ on {differing}"
            print(f"  {name}: {args.repeat} runs, {said}", flush=True)
            if differing:
                unstable.append(name)
    exact = sum(1 for r in rows if r["outcome"].startswith("exact"))
    print(f"{exact}/{len(rows)} exact", flush=True)
    return 0 if exact == len(rows) and not unstable else 1


if __name__ == "__main__":
    sys.exit(main())
