"""The soak gives glibc's free memory back: RSS follows what is in use, not the high-water mark."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.soak.allocator import Trimmer
from harness.soak.sampler import read_process

CHUNK = 100 * 1024  # under glibc's mmap threshold: from the arena, kept there once freed
CHUNKS = 400  # 40 MB


def rss_mb() -> float:
    figures = read_process(os.getpid())
    assert figures is not None
    return figures.rss_mb


@pytest.mark.skipif(not Trimmer().available, reason="no malloc_trim (not glibc)")
def test_freed_arena_memory_goes_back_once_trimmed() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    chunks = [libc.malloc(CHUNK) for _ in range(CHUNKS)]
    assert all(chunks)
    for chunk in chunks:
        ctypes.memset(chunk, 1, CHUNK)  # resident
    # Live chunks up to one above the others, so the arena's top stays there (a small
    # one may first fill a hole below them, left by start-up).
    highest = max(chunks)
    sentinels = [libc.malloc(1024)]
    while sentinels[-1] < highest:
        assert len(sentinels) < 100_000
        sentinels.append(libc.malloc(1024))
    for chunk in chunks:
        libc.free(chunk)
    try:
        before = rss_mb()
        trimmer = Trimmer(interval=10.0)
        assert trimmer.maybe_trim(100.0)
        assert not trimmer.maybe_trim(105.0)  # at most once an interval
        after = rss_mb()
        assert before - after > 0.75 * CHUNK * CHUNKS / 1e6
        assert trimmer.as_dict()["trims"] == 1
    finally:
        for sentinel in sentinels:
            libc.free(sentinel)


# Freed picture-sized blocks, in a fresh interpreter: how much of them stays resident.
# Each block is 300 kB (a 640x360 picture is 350 kB), above glibc's initial mmap threshold;
# one is freed first, which (untuned) slides the threshold above that size.
KEPT_AFTER_FREE = """
import ctypes, os, sys
from harness.soak.allocator import tune
if sys.argv[1] == "tuned":
    assert tune() == {"mmap_threshold": 128 * 1024, "arena_max": 2}
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_ssize_t]
size, count = 300 * 1024, 100
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
libc.free(libc.malloc(size))
blocks = [libc.malloc(size) for _ in range(count)]
for block in blocks:
    ctypes.memset(block, 1, size)
# A live chunk above every block in the heap, so that the heap's top cannot shrink.
# A small chunk may fill a hole that start-up left below them (where depends on the
# environment's size): keep those too, until one comes from above.
brk = libc.sbrk(0)
highest = max((block for block in blocks if block < brk), default=0)
sentinels = [libc.malloc(1024)]
while sentinels[-1] < highest:
    assert len(sentinels) < 100_000
    sentinels.append(libc.malloc(1024))
peak = rss()
for block in blocks:
    libc.free(block)
print((rss() - (peak - size * count)) / (size * count))
"""


def kept_after_free(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", KEPT_AFTER_FREE, mode], capture_output=True,
                         text=True, timeout=60, check=True, cwd=Path(__file__).parents[2])
    return float(out.stdout)


@pytest.mark.skipif(not Trimmer().available, reason="not glibc")
def test_tuned_allocator_gives_freed_pictures_back_at_once() -> None:
    # Untuned, glibc's sliding threshold puts the blocks in the heap, where they stay.
    assert kept_after_free("default") > 0.75
    assert kept_after_free("tuned") < 0.1
