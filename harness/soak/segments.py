"""Bounded disk: the trace in rotated gzip segments, one per verdict window.

A segment holds the records written during one window. Once the windows that
could claim it have been judged, it is kept if a window within `keep_before`
windows after it or `keep_after` windows before it FAILed (full detail around
each FAIL), and deleted otherwise; the window's summary stays in the report.
`keep_all` keeps every segment. A record judged a little after it was written
(the engine waits out its sequencer lag) still lies in a kept segment, since
`keep_before` counts the window before the FAIL.
"""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import IO

from harness.trace import Record


class SegmentStore:
    def __init__(
        self, directory: Path, *, keep_before: int = 1, keep_after: int = 1, keep_all: bool = False
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.keep_before = keep_before
        self.keep_after = keep_after
        self.keep_all = keep_all
        self.index = 0
        self.failed: set[int] = set()
        self.kept: list[int] = []
        self.dropped: list[int] = []
        self.dropped_bytes = 0
        self._pending: list[int] = []  # closed segments not yet decided
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._open()

    def path(self, index: int) -> Path:
        return self.directory / f"trace-{index:05d}.jsonl.gz"

    def _open(self) -> None:
        # Open for the whole window, closed by rotate() or close().
        self._file = gzip.open(  # noqa: SIM115
            self.path(self.index), "wt", encoding="utf-8", compresslevel=3
        )

    def write(self, record: Record) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")

    def rotate(self, failed: bool) -> None:
        """Close the current window's segment (its verdict: `failed`) and start the next."""
        with self._lock:
            if failed:
                self.failed.add(self.index)
            if self._file is not None:
                self._file.close()
            self._pending.append(self.index)
            self.index += 1
            self._open()
            self._decide(self.index - 1)

    def _decide(self, judged: int) -> None:
        # Segment j is claimed by a FAIL in windows j - keep_after .. j + keep_before.
        for j in list(self._pending):
            if j + self.keep_before > judged:
                continue
            self._pending.remove(j)
            claims = range(j - self.keep_after, j + self.keep_before + 1)
            claimed = any(w in self.failed for w in claims)
            if self.keep_all or claimed:
                self.kept.append(j)
            else:
                path = self.path(j)
                if path.exists():
                    self.dropped_bytes += path.stat().st_size
                    path.unlink()
                self.dropped.append(j)

    def close(self) -> None:
        """The run ended: the last segment is closed; undecided ones are kept if claimed."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._pending.append(self.index)
            self._decide(self.index + self.keep_before)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*.gz"))
