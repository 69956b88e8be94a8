"""Mahimahi link traces: one delivery opportunity per line.

Each line is a whole number of milliseconds since the trace began; at that
moment the link may deliver one packet of up to 1504 bytes (MTU plus
Mahimahi's framing). Lines are non-decreasing; a repeated number is several
opportunities in the same millisecond, so 12 Mbit/s is one line per ms. When
the last line is reached the trace starts over, its period being the last
timestamp. A gap is an outage: packets queue (up to the queue limit) and wait.
"""

from __future__ import annotations

from pathlib import Path

OPPORTUNITY_BYTES = 1504


class MahimahiError(ValueError):
    pass


def read_trace(path: Path) -> list[int]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MahimahiError(f"{path}: cannot read the link trace: {exc}") from None
    return parse_trace(text, str(path))


def parse_trace(text: str, where: str = "<trace>") -> list[int]:
    times: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.isdigit():
            raise MahimahiError(f"{where}:{number}: {line!r} is not a whole number of ms")
        value = int(line)
        if times and value < times[-1]:
            raise MahimahiError(f"{where}:{number}: {value} ms comes before {times[-1]} ms")
        times.append(value)
    if not times:
        raise MahimahiError(f"{where}: a link trace needs at least one line")
    if times[-1] == 0:
        raise MahimahiError(f"{where}: the last line sets the period and must be above 0 ms")
    return times


def write_trace(path: Path, times: list[int]) -> None:
    path.write_text("".join(f"{t}\n" for t in times), encoding="ascii")


def mean_kbit(times: list[int]) -> float:
    """Average capacity over one period."""
    return len(times) * OPPORTUNITY_BYTES * 8 / times[-1]
