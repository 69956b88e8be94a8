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

Environment: LVS_HOST, LVS_PORT, LVS_SECRET, LVS_SEED, LVS_FLEET_OUT (master),
LVS_FIGURES_S (how often figures are shipped).
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import threading
import time
from typing import Any

import gevent
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from reference.protocol import telemetry
from reference.protocol.events import CloseSocket, MediaToDecode, ReconnectDue
from reference.protocol.frames import FrameType
from reference.protocol.messages import Caps, SetStream
from reference.protocol.states import ViewerState
from reference.protocol.viewer import ViewerConnection

HOST = os.environ.get("LVS_HOST", "127.0.0.1")
PORT = int(os.environ.get("LVS_PORT", "7450"))
SECRET = os.environ.get("LVS_SECRET", "lvs-secret")
SEED = int(os.environ.get("LVS_SEED", "0"))
FIGURES_S = float(os.environ.get("LVS_FIGURES_S", "2"))
FLUSH_S = 0.1
READ_SIZE = 256 * 1024

_outbox: list[dict[str, Any]] = []
_users: dict[str, LvsViewer] = {}
_numbers = iter(range(1, 1_000_000))


class LvsViewer(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.vid = f"f{worker}-{next(_numbers)}"
        self.conn = ViewerConnection(
            SECRET,
            caps=Caps(codecs=("h264",), hw_decode=False),
            request=SetStream(codec="h264"),
            rng=random.Random(f"{SEED}:{self.vid}"),
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
        record.setdefault("t", round(time.monotonic(), 6))
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
            gevent.sleep(0.05 if deadline is None else max(0.0, deadline - time.monotonic()))
            self.conn.handle_timers(time.monotonic())
            self.events_out(time.monotonic())
        self.reconnect_due = False

    @task
    def watch(self) -> None:
        """One connection: from the (re)connect the core asked for until the socket closes."""
        self.wait_for_reconnect()
        try:
            sock = socket.create_connection((HOST, PORT), timeout=5)
        except OSError as exc:
            self.conn.connection_failed(time.monotonic(), str(exc))
            self.emit({"event": "connection", "action": "failed", "reason": str(exc)})
            self.events_out(time.monotonic())
            return
        self.connects += 1
        self.emit({"event": "connection", "action": "connect"})
        self.conn.connection_made(time.monotonic())
        try:
            while True:
                data = self.conn.data_to_send()
                if data:
                    sock.sendall(data)
                if not self.events_out(time.monotonic()):
                    break
                deadline = self.conn.next_deadline()
                sock.settimeout(None if deadline is None
                                else max(0.001, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(READ_SIZE)
                except TimeoutError:
                    chunk = None
                except OSError:
                    chunk = b""
                now = time.monotonic()
                if chunk is not None:
                    self.conn.receive_data(chunk, now)
                    if not chunk:
                        self.events_out(now)
                        break
                self.conn.handle_timers(now)
        finally:
            sock.close()
            if self.conn.state is not ViewerState.DISCONNECTED:
                self.conn.connection_lost(time.monotonic(), "socket closed")
            self.events_out(time.monotonic())

    def figures(self) -> dict[str, Any]:
        fresh, self.latencies = self.latencies, []
        entry: dict[str, Any] = {"state": self.conn.state.value, "rendered": self.rendered,
                                 "connects": self.connects, "decode": False}
        self.rendered = 0
        if len(fresh) >= 2:
            cuts = statistics.quantiles(fresh, n=100, method="inclusive")
            entry["p50_ms"] = round(cuts[49] * 1000, 3)
            entry["p99_ms"] = round(cuts[98] * 1000, 3)
        return entry


def _ship(runner: WorkerRunner) -> None:
    next_figures = time.monotonic() + FIGURES_S
    while True:
        gevent.sleep(FLUSH_S)
        if _outbox:
            batch = _outbox[:]
            del _outbox[: len(batch)]
            runner.send_message("lvs_records", {"records": batch})
        if time.monotonic() >= next_figures:
            next_figures += FIGURES_S
            figures = {v: u.figures() for v, u in _users.items()}
            runner.send_message("lvs_figures", {"t": time.monotonic(), "figures": figures})


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        gevent.spawn(_ship, runner)
    elif isinstance(runner, MasterRunner):
        out = open(os.environ["LVS_FLEET_OUT"], "a", encoding="utf-8")  # noqa: SIM115
        lock = threading.Lock()

        def write(kind: str, payload: Any) -> None:
            with lock:
                out.write(json.dumps([kind, payload], separators=(",", ":")) + "\n")
                out.flush()

        runner.register_message("lvs_records", lambda msg, **_: write("records", msg.data))
        runner.register_message("lvs_figures", lambda msg, **_: write("figures", msg.data))
