"""How long the HTML run report takes for a large run, beside reading the same traces.

    .venv/bin/python benchmarks/report_render.py [--scenarios 30] [--records 20000]

Writes `--scenarios` synthetic traces of `--records` records each (mostly media
frames, a state change and a fault now and then: the shape tests/report/test_html.py
uses), then times, in the same run, best of three:

* baseline: reading every trace with the harness's trace reader (what any report
  must at least do);
* report: `write_html` for the whole run (reading the traces, digesting them, the
  timelines, writing the page).

The target (it was a timed unit test before): the report for 30 scenarios of
20,000 records within 5 s on the 2-core CI machine, and within a small multiple of
the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.report.html import write_html  # noqa: E402
from harness.trace import iter_trace  # noqa: E402
from tests.report.test_html import _big_trace, _report, _scenario  # noqa: E402

TARGET_S = 5.0


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=30)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        traces, scenarios = [], []
        for i in range(args.scenarios):
            trace = run_dir / "scenarios" / f"s{i}" / "trace.jsonl"
            _big_trace(trace, args.records, i)
            traces.append(trace)
            verdict = "FAIL" if i % 4 == 0 else "PASS"
            scenarios.append(_scenario(run_dir, f"s{i}", verdict, trace))
        report = _report(scenarios)

        def read_all() -> None:
            for trace in traces:
                for _ in iter_trace(trace):
                    pass

        baseline = best_of(3, read_all)
        rendered = best_of(3, lambda: write_html(run_dir, report))
    total = args.scenarios * args.records
    print(f"{args.scenarios} scenarios x {args.records} records ({total} records)")
    print(f"baseline (read every trace): {baseline:.2f} s")
    print(f"report (write_html):         {rendered:.2f} s  = {rendered / baseline:.1f}x baseline")
    print(f"target: under {TARGET_S:g} s -> {'met' if rendered < TARGET_S else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
