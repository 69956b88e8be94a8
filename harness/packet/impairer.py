"""The userspace impairer: a thread that reads packets from the TUN device and writes them back.

For each packet: work out its direction, swap its addresses (ipv4.py), let
that direction's `Lane` decide its fate, then write each surviving copy back
into the device at its release time. Due packets wait in one heap ordered by
release time. The thread sleeps in poll() until a packet arrives, the next
release is due, or stop() is called; nothing here polls on a timer.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import random
import select
import threading
import time
from collections import Counter
from typing import Any

from harness.packet.capture import PacketCapture
from harness.packet.impairment import Impairment
from harness.packet.ipv4 import DIRECTIONS, UPSTREAM, corrupt, direction_of, swap_addresses
from harness.packet.lane import Lane
from harness.packet.tun import TunDevice

READ_SIZE = 65535
BATCH = 256  # packets read per wake-up before releasing due ones


class Impairer:
    def __init__(
        self,
        tun: TunDevice,
        *,
        seed: int,
        capture: PacketCapture | None = None,
    ) -> None:
        self.tun = tun
        self.seed = seed
        self.capture = capture
        self.rngs = {d: random.Random(f"{seed}:{d}") for d in DIRECTIONS}
        now = time.monotonic()
        self.lanes = {d: Lane(Impairment(), self.rngs[d], now) for d in DIRECTIONS}
        self.retired: dict[str, Counter[str]] = {d: Counter() for d in DIRECTIONS}
        self.counts: Counter[str] = Counter()  # not per direction: foreign packets, errors
        self.lock = threading.Lock()
        self.heap: list[tuple[float, int, bytearray]] = []
        self.order = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=f"impairer-{tun.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_w, b"x")
        self.thread.join(5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def set(self, direction: str, impairment: Impairment) -> None:
        """Applies to packets arriving from now on; packets already queued keep their times."""
        lane = Lane(impairment, self.rngs[direction], time.monotonic())
        with self.lock:
            self.retired[direction] += self.lanes[direction].counts
            self.lanes[direction] = lane

    def stats(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {
                d: dict(self.retired[d] + self.lanes[d].counts) for d in DIRECTIONS
            }
        out.update(self.counts)
        return out

    # --- the thread ------------------------------------------------------------

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.tun.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stopping:
            timeout = -1
            if self.heap:
                timeout = max(0, math.ceil((self.heap[0][0] - time.monotonic()) * 1000))
            poller.poll(timeout)
            self._read_all()
            self._release(time.monotonic())

    def _read_all(self) -> None:
        fd = self.tun.fd
        for _ in range(BATCH):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                self.counts["read_errors"] += 1
                return
            self._arrive(bytearray(data), time.monotonic())

    def _arrive(self, packet: bytearray, now: float) -> None:
        addresses = self.tun.addresses
        direction = direction_of(packet, addresses)
        if direction is None:
            self.counts["foreign"] += 1  # IPv6 neighbour chatter and the like: not ours
            return
        # The capture shows every flow as the Primary side sees it (see capture.py).
        if direction == UPSTREAM:
            swap_addresses(packet, direction, addresses)
            if self.capture is not None:
                self.capture.write(packet)
        else:
            if self.capture is not None:
                self.capture.write(packet)
            swap_addresses(packet, direction, addresses)
        with self.lock:
            lane = self.lanes[direction]
            deliveries = lane.admit(now, len(packet))
        for i, delivery in enumerate(deliveries):
            copy = packet if i == len(deliveries) - 1 else bytearray(packet)
            if delivery.corrupt:
                rng = self.rngs[direction]
                corrupt(copy, rng.randrange(1 << 16), rng.randrange(8))
            if delivery.at <= now and not self.heap:
                self._write(copy)
            else:
                heapq.heappush(self.heap, (delivery.at, next(self.order), copy))

    def _release(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            self._write(heapq.heappop(heap)[2])

    def _write(self, packet: bytearray) -> None:
        try:
            os.write(self.tun.fd, packet)
        except OSError:
            self.counts["write_errors"] += 1
