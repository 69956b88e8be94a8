"""xdist scheduling for scenarios: longest first.

Scenarios spend their time waiting on protocol timers, so the suite's wall time is set by
how they are packed onto workers. xdist's own load scheduling gives each worker a run of
consecutive items, so the two longest scenarios can land on one worker, one after the
other. Here, once every worker has collected:

- each worker gets the longest scenario left and the shortest one left (an xdist worker
  runs an item only once it knows the next one, so it always holds two);
- whenever a worker finishes one, it gets the longest scenario left.

Scheduling deliberately waits for every worker to start, as xdist does: starting the
first scenarios while the other workers still import and collect (tried) starves those
scenarios of CPU on a 2-core machine, and timing verdicts of reconfigure-mid-stream and
events-lost-and-late then changed (docs/scenarios.md, "Speed").

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

    def schedule(self) -> None:
        if getattr(self, "collection", None) is None:
            collection: list[str] = next(iter(self.node2collection.values()))
            self.collection = collection
            self.pending[:] = sorted(
                range(len(collection)), key=lambda i: (-self.expected(collection[i]), i)
            )
        for node in self.nodes:
            self.check_schedule(node)
        if not self.pending:  # all handed out: each worker finishes what it holds
            for node in self.nodes:
                if not node.shutting_down:
                    node.shutdown()

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if node.shutting_down or node not in self.node2collection:
            return
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
