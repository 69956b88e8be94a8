"""What a soak costs: checker CPU, disk, harness memory over a long run with many Viewers.

    python benchmarks/soak_cost.py [--minutes 30] [--viewers 50] [--decoding 2] [--every 20]

Runs the `smoke` profile's nemesis (every kind of step, one every `--every` seconds)
for `--minutes` with `--viewers` Viewers (`--decoding` of them decoding, the rest
header-only), then prints, beside the same run's own baseline (the harness process's
whole CPU, of which the checkers are a part, and its memory at the end of warm-up):

- checker CPU as a share of one core (the engine's feed, timed per record on its
  thread; target under 10 %),
- disk used by the run folder (target under 300 MB for 30 minutes),
- harness RSS after warm-up and its slope (target: flat), beside the Python heap's live
  blocks (sys.getallocatedblocks, once a minute): RSS that climbs while the live blocks stay
  flat is the allocator's high-water mark (free memory it keeps), not objects kept alive.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.checks.verdict import Status  # noqa: E402
from harness.soak.profile import load_profile  # noqa: E402
from harness.soak.report import write_reports  # noqa: E402
from harness.soak.run import run_soak  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def heap_blocks(every: float, out: list[tuple[float, int]], done: threading.Event) -> None:
    """Live Python heap blocks once every `every` seconds until `done`."""
    began = time.monotonic()
    while not done.wait(every):  # the sampling interval
        out.append((time.monotonic() - began, sys.getallocatedblocks()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--decoding", type=int, default=2)
    parser.add_argument("--every", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    profile = load_profile("smoke")
    profile.duration = args.minutes * 60
    profile.viewers = args.viewers
    profile.decoding = args.decoding
    profile.every = args.every
    profile.warmup = min(profile.warmup, profile.duration / 4)
    with tempfile.TemporaryDirectory(prefix="lvs-soak-cost-") as tmp:
        directory = Path(tmp)
        began = time.monotonic()
        blocks: list[tuple[float, int]] = []
        done = threading.Event()
        counter = threading.Thread(target=heap_blocks, args=(60.0, blocks, done), daemon=True)
        counter.start()
        result = run_soak(profile, directory, args.seed)
        done.set()
        write_reports(result)
        wall = time.monotonic() - began
        disk = folder_bytes(directory)
    series = result.figures["series"]
    rss = [p for p in series["harness.rss_mb"]["points"] if p[0] >= profile.warmup]
    cpu = [v for _, v in series.get("harness.cpu_pct", {"points": []})["points"]]
    slope = next((d.slope_per_h for d in result.drift if d.limit.metric == "harness.rss_mb"), None)
    checker = 100 * result.checker_cpu_s / max(result.duration, 1e-9)
    print(f"soak: {args.minutes:g} min, {args.viewers} Viewers ({args.decoding} decoding), "
          f"a step every {args.every:g} s, seed {args.seed}; wall {wall:.0f} s, "
          f"{result.records} records, verdict {'PASS' if result.passed else 'FAIL'}")
    print(f"checker CPU   {checker:6.2f} % of a core   (baseline: the whole harness process "
          f"{statistics.fmean(cpu) if cpu else float('nan'):6.2f} %; target < 10 %)")
    print(f"disk used     {disk / 1e6:6.1f} MB            (segments kept "
          f"{result.disk['segments_bytes'] / 1e6:.1f} MB, dropped "
          f"{result.disk['dropped_bytes'] / 1e6:.1f} MB; target < 300 MB)")
    if rss:
        print(f"harness RSS   {rss[0][1]:6.1f} MB after warm-up -> {rss[-1][1]:.1f} MB at the end "
              f"(baseline: the first sample after warm-up), slope {slope} MB/h (target: flat)")
    kills = sum(1 for e in result.executed if e["do"] == "kill_viewer")
    print(f"Viewer kills  {kills} (each a new incarnation; the engine forgets the killed one)")
    trims = result.allocator
    if trims.get("malloc_trim"):
        print(f"malloc_trim   {trims['trims']} times, every {trims['interval_s']:g} s, "
              f"{trims['cpu_s']:.3f} s of CPU in all (glibc's free arena memory given back)")
    live = [b for t, b in blocks if t >= profile.warmup]
    if live:
        print(f"python heap   {live[0]} live blocks after warm-up -> {live[-1]} at the end "
              f"(min {min(live)}, max {max(live)}, one look a minute)")
    for verdict in result.verdicts:
        if verdict.status is Status.FAIL:  # the first evidence: a loaded host, or a peer?
            first = verdict.evidence[0] if verdict.evidence else None
            said = f": {first.what} ({first.where})" if first is not None else ""
            print(f"  FAIL {verdict.requirement} {verdict.summary}{said}")
    for drift in result.drift:
        print(f"  {drift.status.value} {drift.summary}")
    for problem in result.problems:
        print(f"  problem: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
