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

Trimming cannot give back a page that a live chunk still sits on, and two of glibc's
defaults put live chunks among freed pictures. Its mmap threshold slides: each time a
large block that was mapped on its own is freed, blocks of that size come from an
arena from then on (up to 32 MiB), so picture-sized buffers (a 640x360 frame is
350 kB) end up between small long-lived ones. And each thread that allocates may get
an arena of its own (up to eight per core), each with its own pinned pages. A soak
process therefore fixes the threshold at glibc's initial 128 kB (which also stops the
sliding) and caps the arenas at ARENA_MAX, before its worker threads start
(`tune()`); a big buffer is then mapped and unmapped whole. The cost is a mapping and
its page faults per big buffer, tens of microseconds per picture.

Elsewhere than glibc (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TRIM_INTERVAL = 10.0  # seconds; a trim takes about a millisecond
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's initial value, fixed
ARENA_MAX = 2  # the main thread's arena and one that every other thread shares
# mallopt's parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)  # the C library this process already runs on
    except OSError:
        return None


def tune() -> dict[str, int]:
    """Fix glibc's mmap threshold and cap its arenas (see above); what was set.

    Call it before threads start: the arena cap binds only while fewer than eight
    arenas exist. Elsewhere than glibc nothing is set and the answer is empty.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    if mallopt is None:
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    wanted = {"mmap_threshold": (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
              "arena_max": (M_ARENA_MAX, ARENA_MAX)}
    return {name: value for name, (param, value) in wanted.items() if mallopt(param, value) == 1}


def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    found: Callable[[int], int] = trim
    return found


@dataclass
class Trimmer:
    """Calls malloc_trim(0) at most every `interval` seconds; counts what it cost, and
    says what `tune_allocator()` set."""

    interval: float = TRIM_INTERVAL
    trims: int = 0
    seconds: float = 0.0  # CPU spent trimming
    tuned: dict[str, int] = field(default_factory=dict, init=False)  # what tune() set
    _last: float = float("-inf")

    def __post_init__(self) -> None:
        self._trim = _malloc_trim()

    def tune_allocator(self) -> None:
        """`tune()`, once, before the process's worker threads start."""
        self.tuned = tune()

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
            "mallopt": self.tuned,
            "interval_s": self.interval,
            "trims": self.trims,
            "cpu_s": round(self.seconds, 4),
        }
