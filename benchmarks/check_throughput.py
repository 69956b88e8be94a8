"""How fast the verdict engine judges a trace, and how much memory it holds, at 1x/10x/100x.

    python benchmarks/check_throughput.py [--trace PATH] [--seconds 60] [--viewers 4]

The trace is a real one: by default the reference Primary and `--viewers` decoding
reference Viewers run for `--seconds` behind the wire taps (with one
reconfiguration), as a scenario does. Longer traces are spliced from it: copy k
is shifted in time by k spans and its connections renamed, so every copy is a
consistent run of its own (times and sequences increase, connections end before
the next copy starts) and the live state stays that of one copy.

For each length it prints records per second and the per-record cost of all
monitors together on one core, and the peak memory the engine allocated while
the trace was streamed to it (tracemalloc, in a separate pass; the trace itself is
generated on the fly, never held). The clock runs only while the engine is fed:
each copy is spliced into memory before its records are timed, so the figure is
the engine's, not the benchmark's own copying.

Beside them, in the same run and on the same traces: the engine as it was at
commit ENGINE_BASELINE (before its fast paths; `--engine-baseline`), and the batch
checkers this engine replaced (commit BASELINE_COMMIT), each taken from git into a
temporary folder and run in a subprocess, the batch checkers as far as they
finish in reasonable time. The engine figures are the median of `--repeat` runs,
the two engines' runs interleaved, so that a machine shared with other jobs
slows both alike. Targets (issue 8): at least 200,000 records/s, per-record cost
flat within 20 % from 1x to 100x, peak memory independent of the length.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.checks.engine import Engine  # noqa: E402
from harness.trace import Record, read_trace  # noqa: E402

BASELINE_COMMIT = "ebea438"  # the batch checkers
ENGINE_BASELINE = "abbf86c"  # the engine before its fast paths (main when they were merged)
SCENARIO = """\
lvs: 2
description: check_throughput source trace
covers: [EPOCH-2]
timeout: {timeout}
viewers:
{viewers}
timeline:
  - wait: {{viewer: v1, state: STREAMING}}
    within: 15
  - hold: {half}
  - do: reconfigure
    with: {{width: 320, height: 180, bitrate: 300000}}
  - hold: {half}
expect:
  EPOCH-2: {{}}
"""


def record_source(seconds: float, viewers: int, directory: Path) -> Path:
    """Run the reference peers for `seconds` behind the taps; return the trace's path."""
    from harness.scenarios.loader import load_scenario
    from harness.scenarios.runner import run_scenario

    text = SCENARIO.format(
        timeout=int(seconds + 60),
        viewers="\n".join(f"  - id: v{i + 1}" for i in range(viewers)),
        half=seconds / 2,
    )
    path = directory / "source.yaml"
    path.write_text(text)
    try:
        scenario = load_scenario(path)
    except Exception:
        path.write_text(text.replace("lvs: 2\n", ""))  # a loader that predates the marker
        scenario = load_scenario(path)
    run_scenario(scenario, directory / "run", seed=1)
    return directory / "run" / "trace.jsonl"


def spliced(records: list[Record], copies: int) -> Iterator[Record]:
    """`copies` consecutive runs made of one: shifted in time, connections renamed."""
    start = records[0]["t"]
    span = records[-1]["t"] - start + 1.0
    for k in range(copies):
        shift = k * span
        for record in records:
            out = dict(record)
            out["t"] = record["t"] + shift
            if "conn" in out:
                out["conn"] = f"{out['conn']}-{k}"
            yield out


def peak_memory(records: list[Record], copies: int) -> int:
    tracemalloc.start()
    engine = Engine(None)
    for record in spliced(records, copies):
        engine.feed(record)
    engine.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# One timed pass of an engine (whichever `harness` is first on the path) over `copies`
# spliced copies of a trace; prints {"records": n, "seconds": s, "cpu": s} (wall clock and
# this process's CPU time: on a shared machine the second shows what one core costs).
ENGINE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from harness.checks.engine import Engine
    from harness.trace import read_trace
    records = read_trace(Path(sys.argv[1]))
    copies = int(sys.argv[2])
    span = records[-1]["t"] - records[0]["t"] + 1.0
    engine = Engine(None)
    seconds, cpu, count = 0.0, 0.0, 0
    for k in range(copies):
        batch = []
        for r in records:
            r = dict(r, t=r["t"] + k * span)
            if "conn" in r:
                r["conn"] = f"{r['conn']}-{k}"
            batch.append(r)
        started, started_cpu = time.perf_counter(), time.process_time()
        for r in batch:
            engine.feed(r)
        if k == copies - 1:
            engine.finish()
        seconds += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        count += len(batch)
    print(json.dumps({"records": count, "seconds": seconds, "cpu": cpu}))
    """
)


def run_engine(folder: Path, trace: Path, copies: int) -> tuple[float, float]:
    """Seconds (wall clock, CPU) the engine in `folder` spends judging `copies` copies."""
    result = subprocess.run(
        [sys.executable, "-c", ENGINE_SCRIPT, str(trace), str(copies)],
        capture_output=True, text=True, cwd=folder,
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"engine in {folder} failed: {result.stderr.strip()[-500:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return float(found["seconds"]), float(found["cpu"])


BASELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from harness.checks.registry import CHECKS, run_checks
    from harness.trace import load, read_trace
    records = read_trace(Path(sys.argv[1]))
    copies = int(sys.argv[2])
    span = records[-1]["t"] - records[0]["t"] + 1.0
    spliced = []
    for k in range(copies):
        for r in records:
            r = dict(r, t=r["t"] + k * span)
            if "conn" in r:
                r["conn"] = f"{r['conn']}-{k}"
            spliced.append(r)
    started = time.perf_counter()
    run_checks(load(spliced), {rid: {} for rid in CHECKS})
    print(json.dumps({"records": len(spliced), "seconds": time.perf_counter() - started}))
    """
)


def baseline(trace: Path, copies: int, folder: Path, limit: float) -> dict[str, Any] | None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", BASELINE_SCRIPT, str(trace), str(copies)],
            capture_output=True, text=True, timeout=limit, cwd=folder,
            env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"},
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"baseline failed: {result.stderr.strip().splitlines()[-1:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def extract_baseline(folder: Path, commit: str = BASELINE_COMMIT) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "harness", "reference"],
        capture_output=True, check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=None, help="a recorded trace.jsonl")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument(
        "--baseline-limit", type=float, default=300.0,
        help="seconds the old batch checkers may take per size before they are skipped",
    )
    parser.add_argument("--repeat", type=int, default=3, help="engine runs per size (median)")
    parser.add_argument(
        "--engine-baseline", default=ENGINE_BASELINE,
        help="the commit whose engine runs beside this one ('' for none)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trace = args.trace or record_source(args.seconds, args.viewers, folder)
        records = read_trace(trace)
        span = records[-1]["t"] - records[0]["t"]
        print(f"source: {trace if args.trace else 'a fresh reference run'}: "
              f"{len(records):,} records over {span:.1f} s")
        monitors = len(Engine(None).monitors)
        print(f"engine: {monitors} monitors, one core (this process)")
        old = folder / "baseline"
        old.mkdir()
        extract_baseline(old)
        before: Path | None = None
        if args.engine_baseline:
            before = folder / "engine-baseline"
            before.mkdir()
            extract_baseline(before, args.engine_baseline)
        base_trace = folder / "source.jsonl"
        base_trace.write_text("".join(json.dumps(r) + "\n" for r in records))
        before_title = f"{args.engine_baseline} rec/s" if before is not None else ""
        print(f"{'size':>5} {'records':>11} {'engine rec/s':>13} {'us/record':>10} "
              f"{'CPU us/rec':>10} {'peak MiB':>9} {before_title:>15} {'batch rec/s':>12}")
        per_record: list[float] = []
        cpu_per_record: list[float] = []
        batch_gave_up = False
        for size in (int(s) for s in args.sizes.split(",")):
            count = len(records) * size
            now_runs: list[tuple[float, float]] = []
            before_runs: list[float] = []
            for _ in range(args.repeat):
                now_runs.append(run_engine(ROOT, base_trace, size))
                if before is not None:
                    before_runs.append(run_engine(before, base_trace, size)[0])
            seconds = statistics.median(wall for wall, _ in now_runs)
            cpu = statistics.median(cpu for _, cpu in now_runs)
            peak = peak_memory(records, size) / 2**20
            per_record.append(seconds / count)
            cpu_per_record.append(cpu / count)
            before_text = (
                f"{count / statistics.median(before_runs):,.0f}" if before_runs else ""
            )
            if batch_gave_up:
                old_text = "skipped"
            else:
                found = baseline(base_trace, size, old, args.baseline_limit)
                if found is None:
                    batch_gave_up = True
                    old_text = f">{args.baseline_limit:.0f} s"
                else:
                    old_text = f"{found['records'] / found['seconds']:,.0f}"
            print(f"{size:>4}x {count:>11,} {count / seconds:>13,.0f} "
                  f"{1e6 * seconds / count:>10.2f} {1e6 * cpu / count:>10.2f} {peak:>9.1f} "
                  f"{before_text:>15} {old_text:>12}")
        drift = per_record[-1] / per_record[0] - 1
        cpu_drift = cpu_per_record[-1] / cpu_per_record[0] - 1
        print(f"per-record cost {args.sizes.split(',')[-1]}x vs {args.sizes.split(',')[0]}x: "
              f"{100 * drift:+.1f} % wall clock, {100 * cpu_drift:+.1f} % CPU "
              f"(target within 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
