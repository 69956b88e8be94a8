"""Bounded disk: segments around a FAIL window are kept, the rest dropped once judged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.soak.segments import SegmentStore


def _run(tmp_path: Path, failed: set[int], windows: int = 8, **kw: object) -> SegmentStore:
    store = SegmentStore(tmp_path, **kw)  # type: ignore[arg-type]
    for w in range(windows):
        store.write({"t": float(w), "kind": "note", "text": f"window {w}"})
        store.rotate(w in failed)
    store.close()
    return store


def test_keeps_one_window_either_side_of_a_fail(tmp_path: Path) -> None:
    store = _run(tmp_path, {3})
    assert sorted(store.kept) == [2, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("*.gz")) == [
        "trace-00002.jsonl.gz", "trace-00003.jsonl.gz", "trace-00004.jsonl.gz"]
    with gzip.open(tmp_path / "trace-00003.jsonl.gz", "rt") as handle:
        assert json.loads(handle.readline())["text"] == "window 3"
    assert store.dropped_bytes > 0 and store.disk_bytes() > 0


def test_no_fail_keeps_nothing_and_keep_all_keeps_everything(tmp_path: Path) -> None:
    assert _run(tmp_path / "a", set()).kept == []
    assert list((tmp_path / "a").glob("*.gz")) == []
    _run(tmp_path / "b", set(), keep_all=True)
    assert len(list((tmp_path / "b").glob("*.gz"))) == 9  # eight windows and the closing one


@pytest.mark.parametrize(("before", "after", "kept"), [(0, 0, [5]), (2, 0, [3, 4, 5]),
                                                       (0, 2, [5, 6, 7])])
def test_margins(tmp_path: Path, before: int, after: int, kept: list[int]) -> None:
    assert sorted(_run(tmp_path, {5}, keep_before=before, keep_after=after).kept) == kept
