"""The C allocator's free memory, given back to the system during a soak (glibc only).

The harness process allocates in several threads (pictures are encoded in worker
threads, Toxiproxy runs its own loop) and frees on others. glibc's malloc keeps
what was freed in the arena it came from, for reuse; after a burst (a reconnect
storm, a late event loop) that free memory stays in the arenas and counts as
resident. Measured on a 10-minute soak (50 Viewers, 2 decoding, a step every 20 s):
the memory in use in malloc's arenas stayed at about 21 MB while their free part
grew 2 -> 12 MB, and RSS with it, with Python's live blocks flat. `malloc_trim(0)`
returns the free pages of every arena to the system; the soak calls it every
TRIM_INTERVAL seconds, so RSS follows what is in use, and a leak still shows.

Elsewhere than glibc (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass

TRIM_INTERVAL = 10.0  # seconds; a trim takes about a millisecond


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


@dataclass
class Trimmer:
    """Calls malloc_trim(0) at most every `interval` seconds; counts what it cost."""

    interval: float = TRIM_INTERVAL
    trims: int = 0
    seconds: float = 0.0  # CPU spent trimming
    _last: float = float("-inf")

    def __post_init__(self) -> None:
        self._trim = _malloc_trim()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe_trim(self, now: float) -> bool:
        """Trim if `interval` seconds passed since the last trim; whether it did."""
        if self._trim is None or now - self._last < self.interval:
            return False
        self._last = now
        began = time.thread_time()
        self._trim(0)
        self.seconds += time.thread_time() - began
        self.trims += 1
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "malloc_trim": self.available,
            "interval_s": self.interval,
            "trims": self.trims,
            "cpu_s": round(self.seconds, 4),
        }
