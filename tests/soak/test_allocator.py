"""The soak gives glibc's free memory back: RSS follows what is in use, not the high-water mark."""

from __future__ import annotations

import ctypes
import os

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
    chunks = [libc.malloc(CHUNK) for _ in range(CHUNKS + 1)]
    assert all(chunks)
    for chunk in chunks:
        ctypes.memset(chunk, 1, CHUNK)  # resident
    *chunks, sentinel = chunks  # the last, above the others: the arena's top stays there
    assert sentinel > max(chunks)
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
        libc.free(sentinel)
