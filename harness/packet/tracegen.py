"""Generate the link traces shipped in harness/packet/traces (Mahimahi format).

    python -m harness.packet.tracegen [FOLDER]

Each trace is a list of (duration in ms, capacity in kbit/s) segments; 0 kbit/s
is an outage. Opportunities are laid out with a running credit, so the file is
the same on every run and the test suite checks it against the shipped copy.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from harness.packet.impairment import SHIPPED_TRACES
from harness.packet.mahimahi import OPPORTUNITY_BYTES, write_trace

Segments = list[tuple[int, float]]


def _lte_walk() -> Segments:
    """30 s of LTE-like capacity: a seeded random walk between 3 and 20 Mbit/s every 500 ms."""
    rng = random.Random(2024)
    rate = 10_000.0
    out: Segments = []
    for _ in range(60):
        rate = min(20_000.0, max(3_000.0, rate * rng.uniform(0.7, 1.4)))
        out.append((500, round(rate)))
    return out


TRACES: dict[str, Segments] = {
    # 3G-like steps: 2 Mbit/s, 1, 0.5, 1.5, 0.75, 5 s each (25 s period).
    "stepped-3g": [(5000, 2000), (5000, 1000), (5000, 500), (5000, 1500), (5000, 750)],
    # A cell handover: 8 Mbit/s for 8 s, a 3 s outage, 8 Mbit/s again for 10 s.
    "handover-outage": [(8000, 8000), (3000, 0), (10000, 8000)],
    "lte-walk": _lte_walk(),
}


def opportunities(segments: Segments) -> list[int]:
    times: list[int] = []
    credit, now = 0.0, 0
    for duration, kbit in segments:
        per_ms = kbit / 8 / OPPORTUNITY_BYTES  # kbit/s is bits per ms; 1504 bytes each
        for _ in range(duration):
            now += 1
            credit += per_ms
            while credit >= 1:
                times.append(now)
                credit -= 1
    if not times or times[-1] != now:
        times.append(now)  # the last line is the period
    return times


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, segments in TRACES.items():
        path = folder / f"{name}.mahimahi"
        write_trace(path, opportunities(segments))
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED_TRACES
    for path in write_all(target):
        print(path)
