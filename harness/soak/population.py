"""The Viewer population: reference Viewers in a child process, joined, killed and rejoined.

The Viewers run in their own process so that their memory, descriptors, threads
and CPU can be sampled apart from the harness (the Primary, the taps, the
injectors and the checkers stay in the harness process). That process speaks to
the harness over one pipe: commands in (`join`, `kill`, `stop`), telemetry
records and per-Viewer figures out. Both processes stamp records with
CLOCK_MONOTONIC, which is system-wide, so the trace needs no clock translation.

Decoding Viewers decode every picture (PyAV); header-only Viewers trust the
headers (`decode=False`), which is how a population of fifty fits on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from harness.soak.allocator import Trimmer
from harness.soak.sampler import percentiles_ms
from reference.protocol.timings import DEFAULT_TIMINGS, Timings

# How often the child ships telemetry (latency of the live trace) and figures.
FLUSH_INTERVAL = 0.05
HOST = "127.0.0.1"


@dataclass(frozen=True)
class PopulationConfig:
    secret: str
    seed: int
    stats_interval: float
    deviations: tuple[str, ...] = ()
    timings: Timings = DEFAULT_TIMINGS


# --- the child process --------------------------------------------------------


class _Worker:
    def __init__(self, pipe: Connection, config: PopulationConfig) -> None:
        from reference.peers.viewer import ReferenceViewer

        self.pipe = pipe
        self.config = config
        self.viewers: dict[str, ReferenceViewer] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # Killed Viewers' tasks until they have unwound: a task nobody references can be
        # collected while still pending.
        self.dying: set[asyncio.Task[None]] = set()
        self.outbox: list[dict[str, Any]] = []
        self.seen: dict[str, tuple[int, int]] = {}  # viewer -> (latency samples, rendered) read
        self.joins: dict[str, int] = {}
        self.stopping = asyncio.Event()
        self.trimmer = Trimmer()
        self.trimmer.tune_allocator()  # before any worker thread allocates
        self.lock = threading.Lock()

    def join(self, vid: str, port: int, decode: bool) -> None:
        from reference.peers.viewer import ReferenceViewer, ViewerConfig
        from reference.protocol.deviations import parse_deviations

        self.kill(vid)
        self.joins[vid] = self.joins.get(vid, 0) + 1

        def sink(record: dict[str, Any]) -> None:
            self.outbox.append({**record, "kind": "telemetry"})

        viewer = ReferenceViewer(
            ViewerConfig(
                host=HOST,
                port=port,
                secret=self.config.secret,
                timings=self.config.timings,
                decode=decode,
                viewer_id=vid,
                seed=self.config.seed + sum(map(ord, vid)) + 7919 * self.joins[vid],
                deviations=parse_deviations(self.config.deviations),
            ),
            sink=sink,
        )
        self.viewers[vid] = viewer
        self.seen[vid] = (0, 0)
        self.tasks[vid] = asyncio.create_task(viewer.run(), name=f"viewer {vid}")

    def kill(self, vid: str) -> None:
        """Drop the Viewer without a BYE: its process state goes, its socket is cut."""
        task = self.tasks.pop(vid, None)
        self.viewers.pop(vid, None)
        self.seen.pop(vid, None)
        if task is not None:
            task.cancel()
            self.dying.add(task)
            task.add_done_callback(self.dying.discard)

    def figures(self) -> dict[str, dict[str, Any]]:
        """Per Viewer, since the last call: delivery latency p50/p99, rendered, connects."""
        out: dict[str, dict[str, Any]] = {}
        for vid, viewer in self.viewers.items():
            stats = viewer.stats
            _, rendered_seen = self.seen.get(vid, (0, 0))
            # Taken and cleared: the Viewer's own list would grow for hours (and show as a
            # leak of this process that the soak itself caused).
            fresh = list(stats.latencies)
            stats.latencies.clear()
            decodes = list(stats.decode_times)
            stats.decode_times.clear()
            self.seen[vid] = (0, stats.rendered)
            entry: dict[str, Any] = {
                "state": viewer.state.value,
                "rendered": stats.rendered - rendered_seen,
                "connects": stats.connects,
                "joins": self.joins.get(vid, 0),
                "decode": viewer.config.decode,
            }
            entry.update(percentiles_ms(fresh))
            entry.update(percentiles_ms(decodes, "decode_"))
            out[vid] = entry
        return out

    async def flush_loop(self) -> None:
        next_stats = time.monotonic() + self.config.stats_interval
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), FLUSH_INTERVAL)
            self.flush()
            now = time.monotonic()
            self.trimmer.maybe_trim(now)  # this process's freed memory back too
            if now >= next_stats:
                next_stats = now + self.config.stats_interval
                self.pipe.send(("figures", now, self.figures()))

    def flush(self) -> None:
        if self.outbox:
            batch, self.outbox = self.outbox, []
            self.pipe.send(("records", batch))

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

        def read() -> None:
            while True:
                try:
                    message = self.pipe.recv()
                except (EOFError, OSError):
                    message = ("stop",)
                loop.call_soon_threadsafe(commands.put_nowait, message)
                if message[0] == "stop":
                    return

        threading.Thread(target=read, name="population commands", daemon=True).start()
        flusher = asyncio.create_task(self.flush_loop())
        self.pipe.send(("ready",))
        while True:
            message = await commands.get()
            if message[0] == "join":
                self.join(message[1], message[2], message[3])
            elif message[0] == "kill":
                self.kill(message[1])
            elif message[0] == "stop":
                break
        for viewer in self.viewers.values():
            viewer.stop()
        tasks = list(self.tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self.stopping.set()
        await flusher
        self.flush()
        self.pipe.send(("stopped",))


def _child_main(pipe: Connection, config: PopulationConfig) -> None:
    asyncio.run(_Worker(pipe, config).main())


# --- the harness side -----------------------------------------------------------


RecordSink = Callable[[dict[str, Any]], None]
FiguresSink = Callable[[float, dict[str, dict[str, Any]]], None]


class PopulationError(RuntimeError):
    pass


class Population:
    """The child process and the thread that copies what it says into the trace."""

    def __init__(self, config: PopulationConfig, records: RecordSink, figures: FiguresSink) -> None:
        self.config = config
        self.records = records
        self.figures = figures
        context = multiprocessing.get_context("spawn")  # no fork of a threaded harness
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=_child_main, args=(child, config), name="lvs-soak-viewers", daemon=True
        )
        self._child_end = child
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.live: dict[str, bool] = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def start(self, within: float = 60.0) -> None:
        self.process.start()
        self._child_end.close()
        self._reader = threading.Thread(target=self._read, name="population reader", daemon=True)
        self._reader.start()
        if not self._ready.wait(within):
            self.process.kill()
            raise PopulationError(f"the Viewer process did not start within {within:g} s")

    def _read(self) -> None:
        while True:
            try:
                message = self.pipe.recv()
            except (EOFError, OSError):
                break
            if message[0] == "records":
                for record in message[1]:
                    self.records(record)
            elif message[0] == "figures":
                self.figures(message[1], message[2])
            elif message[0] == "ready":
                self._ready.set()
            elif message[0] == "stopped":
                break
        self._stopped.set()

    def _send(self, *message: Any) -> None:
        with self._send_lock:
            self.pipe.send(message)

    def join(self, vid: str, port: int, decode: bool) -> None:
        self.live[vid] = decode
        self._send("join", vid, port, decode)

    def kill(self, vid: str) -> None:
        self.live.pop(vid, None)
        self._send("kill", vid)

    def stop(self, within: float = 15.0) -> None:
        if self.process.pid is None:
            return
        with contextlib.suppress(OSError, BrokenPipeError):
            self._send("stop")
        self._stopped.wait(within)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.pipe.close()
