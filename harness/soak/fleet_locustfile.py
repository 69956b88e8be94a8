"""The Locust side of `harness soak --fleet locust`: an LVS Viewer user on gevent sockets.

Run by Locust, not imported by the harness (gevent patches the process it runs in):

    locust -f harness/soak/fleet_locustfile.py --master ...   # collects telemetry
    locust -f harness/soak/fleet_locustfile.py --worker ...   # runs Viewer users

Each user is one header-only Viewer: the sans-IO `ViewerConnection` (every rule of
the Viewer lives there) driven over a gevent socket, reconnecting whenever the core
says so. Per video frame it times the delivery (capture stamp to arrival; reported
to Locust as a request of type LVS named `frame`, so Locust's own statistics carry
the latency percentiles) and checks the epoch: a picture of another epoch than
the stream's is a Locust failure `stale epoch`. Telemetry records (PROTOCOL.md)
and per-Viewer figures go to the master in batches; the master appends them to
the JSON Lines file named by LVS_FLEET_OUT, which the harness tails into the soak.

What a worker needs comes from the master, so that a worker on another host is
started with nothing but the master's address (docs/soak.md):

- the entry port, secret, seed and figures interval are Locust options of this file
  (`--lvs-port`, `--lvs-secret`, `--lvs-seed`, `--lvs-figures-s`; defaults from LVS_PORT,
  LVS_SECRET, LVS_SEED, LVS_FIGURES_S), given to the master, which forwards them to
  every worker as its run starts;
- the host to connect to is LVS_HOST where the worker has it, else the host it reached
  the master on (`--master-host`): the soak's entry listens where its master does;
- the clock: delivery latency compares the Primary's capture stamps (the soak host's
  monotonic clock) with the arrival, and the records' `t` must be on the trace's clock,
  so the master sends its clock every CLOCK_EVERY_S and a worker whose own clock is
  further than SAME_CLOCK_LIMIT from it (another host) adds the difference it first
  saw (fixed from then on, as the telemetry inlet does, PROTOCOL.md 9.3; its error is
  the one-way delay master -> worker). A user starts once the clock is known.

LVS_FLEET_OUT (the master) names the file the records go to.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from typing import Any

import gevent
import gevent.event
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from harness.soak.sampler import percentiles_ms
from reference.protocol import telemetry
from reference.protocol.events import CloseSocket, MediaToDecode, ReconnectDue
from reference.protocol.frames import FrameType
from reference.protocol.messages import Caps, SetStream
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import SAME_CLOCK_LIMIT
from reference.protocol.viewer import ViewerConnection

FLUSH_S = 0.1
READ_SIZE = 256 * 1024
CLOCK_EVERY_S = 0.5  # the master's clock to the workers
CLOCK_WAIT_S = 30.0  # a user waits this long for the first one

_outbox: list[dict[str, Any]] = []
_users: dict[str, LvsViewer] = {}
_numbers = iter(range(1, 1_000_000))


class MasterClock:
    """This worker's clock on the master's (the soak host's): see the module's text."""

    def __init__(self) -> None:
        self.offset: float | None = None
        self.known = gevent.event.Event()

    def heard(self, master_t: float, now: float) -> None:
        if self.offset is None:
            gap = master_t - now
            self.offset = gap if abs(gap) > SAME_CLOCK_LIMIT else 0.0
            self.known.set()

    def __call__(self) -> float:
        return time.monotonic() + (self.offset or 0.0)


clock = MasterClock()


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    env = os.environ.get
    parser.add_argument("--lvs-port", type=int, default=int(env("LVS_PORT", "7450")),
                        help="the soak's entry port", include_in_web_ui=False)
    parser.add_argument("--lvs-secret", default=env("LVS_SECRET", "lvs-secret"),
                        include_in_web_ui=False)
    parser.add_argument("--lvs-seed", type=int, default=int(env("LVS_SEED", "0")),
                        include_in_web_ui=False)
    parser.add_argument("--lvs-figures-s", type=float, default=float(env("LVS_FIGURES_S", "2")),
                        help="how often per-Viewer figures are shipped", include_in_web_ui=False)


def entry_host(options: Any) -> str:
    """LVS_HOST, else the host this worker reached its master on."""
    return os.environ.get("LVS_HOST") or getattr(options, "master_host", None) or "127.0.0.1"


class LvsViewer(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not clock.known.wait(CLOCK_WAIT_S):
            raise RuntimeError(f"no clock from the Locust master within {CLOCK_WAIT_S:g} s")
        options = self.environment.parsed_options
        self.address = (entry_host(options), int(options.lvs_port))
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.vid = f"f{worker}-{next(_numbers)}"
        self.conn = ViewerConnection(
            options.lvs_secret,
            caps=Caps(codecs=("h264",), hw_decode=False),
            request=SetStream(codec="h264"),
            rng=random.Random(f"{options.lvs_seed}:{self.vid}"),
        )
        self.latencies: list[float] = []
        self.rendered = 0
        self.connects = 0
        self.reconnect_due = True
        _users[self.vid] = self
        self.emit({"event": "hello", "implementation": "lvs-locust-viewer", "version": 2,
                   "decode": False})

    def on_stop(self) -> None:
        _users.pop(self.vid, None)

    def emit(self, record: dict[str, Any]) -> None:
        record.setdefault("t", round(clock(), 6))
        record.setdefault("viewer", self.vid)
        _outbox.append({**record, "kind": "telemetry"})

    def events_out(self, now: float) -> bool:
        """Hand the core's events on; False once it asked for the socket to close."""
        open_ = True
        for event in self.conn.next_events():
            for record in telemetry.records_from_event(event, now, self.vid):
                self.emit(record)
            if isinstance(event, MediaToDecode):
                self.media(event, now)
            elif isinstance(event, ReconnectDue):
                self.reconnect_due = True
            elif isinstance(event, CloseSocket):
                open_ = False
        return open_

    def media(self, event: MediaToDecode, now: float) -> None:
        frame = event.frame
        if frame.type is FrameType.CSD:
            self.conn.csd_applied_to_decoder(frame.epoch, now)
            return
        if frame.type is not FrameType.VIDEO:
            return
        latency = now - frame.timestamp_us / 1_000_000
        self.latencies.append(latency)
        stale = frame.epoch != self.conn.epoch
        events.request.fire(  # type: ignore[no-untyped-call]
            request_type="LVS", name="frame", response_time=latency * 1000,
            response_length=len(frame.payload),
            exception=AssertionError(f"stale epoch {frame.epoch}") if stale else None,
            context={},
        )
        self.conn.picture_decoded(frame.epoch, frame.is_keyframe, now)
        if self.conn.state is ViewerState.STREAMING:
            self.rendered += 1

    def wait_for_reconnect(self) -> None:
        while not self.reconnect_due:
            deadline = self.conn.next_deadline()
            gevent.sleep(0.05 if deadline is None else max(0.0, deadline - clock()))
            self.conn.handle_timers(clock())
            self.events_out(clock())
        self.reconnect_due = False

    @task
    def watch(self) -> None:
        """One connection: from the (re)connect the core asked for until the socket closes."""
        self.wait_for_reconnect()
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError as exc:
            self.conn.connection_failed(clock(), str(exc))
            self.emit({"event": "connection", "action": "failed", "reason": str(exc)})
            self.events_out(clock())
            return
        self.connects += 1
        self.emit({"event": "connection", "action": "connect"})
        self.conn.connection_made(clock())
        try:
            while True:
                data = self.conn.data_to_send()
                if data:
                    sock.sendall(data)
                if not self.events_out(clock()):
                    break
                deadline = self.conn.next_deadline()
                sock.settimeout(None if deadline is None
                                else max(0.001, deadline - clock()))
                try:
                    chunk = sock.recv(READ_SIZE)
                except TimeoutError:
                    chunk = None
                except OSError:
                    chunk = b""
                now = clock()
                if chunk is not None:
                    self.conn.receive_data(chunk, now)
                    if not chunk:
                        self.events_out(now)
                        break
                self.conn.handle_timers(now)
        finally:
            sock.close()
            if self.conn.state is not ViewerState.DISCONNECTED:
                self.conn.connection_lost(clock(), "socket closed")
            self.events_out(clock())

    def figures(self) -> dict[str, Any]:
        fresh, self.latencies = self.latencies, []
        entry: dict[str, Any] = {"state": self.conn.state.value, "rendered": self.rendered,
                                 "connects": self.connects, "decode": False}
        self.rendered = 0
        entry.update(percentiles_ms(fresh))
        return entry


def _ship(runner: WorkerRunner) -> None:
    def every() -> float:
        return float(getattr(runner.environment.parsed_options, "lvs_figures_s", 2.0))

    next_figures = clock() + every()
    while True:
        gevent.sleep(FLUSH_S)
        if _outbox:
            batch = _outbox[:]
            del _outbox[: len(batch)]
            runner.send_message("lvs_records", {"records": batch})
        if clock() >= next_figures:
            next_figures += every()
            figures = {v: u.figures() for v, u in _users.items()}
            runner.send_message("lvs_figures", {"t": clock(), "figures": figures})


def _tell_the_time(runner: MasterRunner) -> None:
    while True:
        runner.send_message("lvs_clock", {"t": time.monotonic()})
        gevent.sleep(CLOCK_EVERY_S)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("lvs_clock", lambda msg, **_: clock.heard(
            float(msg.data["t"]), time.monotonic()))
        gevent.spawn(_ship, runner)
    elif isinstance(runner, MasterRunner):
        gevent.spawn(_tell_the_time, runner)
        out = open(os.environ["LVS_FLEET_OUT"], "a", encoding="utf-8")  # noqa: SIM115
        lock = threading.Lock()

        def write(kind: str, payload: Any) -> None:
            with lock:
                out.write(json.dumps([kind, payload], separators=(",", ":")) + "\n")
                out.flush()

        runner.register_message("lvs_records", lambda msg, **_: write("records", msg.data))
        runner.register_message("lvs_figures", lambda msg, **_: write("figures", msg.data))
