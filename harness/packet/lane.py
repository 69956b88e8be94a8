"""One direction of the packet hop: what happens to one packet, decided when it arrives.

The pipeline, in netem's order:

    blackhole -> loss (random or Gilbert-Elliott) -> duplicate -> for each copy:
    corrupt? -> the link (rate or trace, tail drop at the queue limit) -> delay

Delay with jitter keeps packets in order (a packet never leaves before the one
ahead of it); only `reorder` sends a packet ahead, netem-style: with that
probability it skips the delay. Sans-IO: the caller passes the clock and gets
back when each copy is to be written, so the statistics are tested without a
TUN device.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from harness.packet.impairment import Impairment
from harness.packet.link import Link, RateLink, TraceLink, WireSpeed
from harness.packet.loss import GilbertElliottLoss, LossModel, NoLoss, RandomLoss
from harness.packet.mahimahi import read_trace

# Why a packet was dropped: the counters' names and the capture's comments.
BLACKHOLE, LOSS, QUEUE_FULL = "blackhole", "loss", "queue_full"


@dataclass(frozen=True)
class Delivery:
    at: float
    corrupt: bool = False
    reordered: bool = False


class Lane:
    def __init__(self, impairment: Impairment, rng: random.Random, now: float) -> None:
        self.impairment = impairment
        self.rng = rng
        self.loss: LossModel = NoLoss()
        if impairment.gilbert_elliott is not None:
            self.loss = GilbertElliottLoss(impairment.gilbert_elliott, rng)
        elif impairment.loss:
            self.loss = RandomLoss(impairment.loss, rng)
        self.link: Link = WireSpeed()
        if impairment.rate_kbit:
            self.link = RateLink(impairment.rate_kbit, impairment.queue_limit)
        elif impairment.trace_file is not None:
            self.link = TraceLink(read_trace(impairment.trace_file), impairment.queue_limit, now)
        self.last_release = 0.0
        self.counts: Counter[str] = Counter()

    def admit(self, now: float, size: int) -> list[Delivery]:
        """The copies of this packet to write and when; empty when it is dropped."""
        imp, rng = self.impairment, self.rng
        self.counts["packets"] += 1
        if imp.blackhole:
            self.counts[BLACKHOLE] += 1
            return []
        if self.loss.lose():
            self.counts[LOSS] += 1
            return []
        copies = 2 if imp.duplicate and rng.random() < imp.duplicate else 1
        self.counts["duplicated"] += copies - 1
        out = []
        for _ in range(copies):
            corrupt = bool(imp.corrupt) and rng.random() < imp.corrupt
            leaves = self.link.departure(now, size)
            if leaves is None:
                self.counts[QUEUE_FULL] += 1
                continue
            if imp.reorder and rng.random() < imp.reorder:
                self.counts["reordered"] += 1
                out.append(Delivery(leaves, corrupt, reordered=True))
            else:
                release = max(leaves + self._delay(), self.last_release)
                self.last_release = release
                out.append(Delivery(release, corrupt))
            self.counts["corrupted"] += corrupt
        return out

    def _delay(self) -> float:
        imp = self.impairment
        if not imp.delay_ms and not imp.jitter_ms:
            return 0.0
        if imp.distribution == "normal":
            ms = self.rng.gauss(imp.delay_ms, imp.jitter_ms)
        else:
            ms = imp.delay_ms + self.rng.uniform(-imp.jitter_ms, imp.jitter_ms)
        return max(ms, 0.0) / 1000
