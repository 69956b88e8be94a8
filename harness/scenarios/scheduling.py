"""xdist scheduling for scenarios: longest first, and no worker waits for the others to start.

Scenarios spend their time waiting on protocol timers, so the suite's wall time is set by
how they are packed onto workers. xdist's own load scheduling waits until every worker has
collected, then gives each worker a run of consecutive items; the two longest scenarios can
land on one worker, one after the other. Here:

- a worker gets work as soon as *it* has collected (starting 10 Python processes on 2 cores
  takes seconds, which the first workers spend running scenarios);
- a fresh worker gets the longest scenario left and the shortest one left (an xdist worker
  runs an item only once it knows the next one, so it always holds two);
- whenever a worker finishes one, it gets the longest scenario left.

The expected durations are estimates from the scenario files (loader.declared_timing).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScheduling

from harness.scenarios.loader import declared_timing


class LongestFirstScheduling(LoadScheduling):  # type: ignore[misc]
    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        root = config.rootpath

        @cache
        def expected(nodeid: str) -> float:
            path = root / nodeid.split("::", 1)[0]
            return declared_timing(Path(path)).expected if path.suffix in (".yaml", ".yml") else 0

        self.expected = expected

    @property
    def collection_is_completed(self) -> bool:
        """Scheduling starts with the first worker that has collected."""
        return bool(self.node2collection)

    def schedule(self) -> None:
        if getattr(self, "collection", None) is None:
            collection: list[str] = next(iter(self.node2collection.values()))
            self.collection = collection
            self.pending[:] = sorted(
                range(len(collection)), key=lambda i: (-self.expected(collection[i]), i)
            )
        for node in self.nodes:
            self.check_schedule(node)
        if not self.pending:  # all handed out: the busy finish theirs, the late ones need not
            for node in self.nodes:
                if not node.shutting_down:
                    node.shutdown()

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if node.shutting_down or node not in self.node2collection:
            return  # a worker still starting is served once it has collected
        queued = self.node2pending[node]
        if self.pending and not queued:
            longest = self.pending.pop(0)
            shortest = [self.pending.pop()] if self.pending else []
            self._send(node, [longest, *shortest])
        elif self.pending and len(queued) < 2:
            self._send(node, [self.pending.pop(0)])
        if not self.pending:
            node.shutdown()

    def _send(self, node: Any, indices: list[int]) -> None:
        self.node2pending[node].extend(indices)
        node.send_runtest_some(indices)
