"""Loss models: which packets a lane drops before anything else happens to them."""

from __future__ import annotations

import random
from typing import Protocol

from harness.packet.impairment import GilbertElliott


class LossModel(Protocol):
    def lose(self) -> bool: ...


class NoLoss:
    def lose(self) -> bool:
        return False


class RandomLoss:
    """Each packet is lost independently with probability `rate`."""

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate, self.rng = rate, rng

    def lose(self) -> bool:
        return self.rng.random() < self.rate


class GilbertElliottLoss:
    """Two-state Markov loss: the current state decides this packet, then the state moves.

    In the bad state a packet is lost with probability 1-h (`loss_bad`), in the
    good state with 1-k (`loss_good`). Bad periods last 1/r packets on average,
    good periods 1/p, and the long-run loss rate is `GilbertElliott.mean_loss`.
    """

    def __init__(self, model: GilbertElliott, rng: random.Random) -> None:
        self.model, self.rng = model, rng
        self.bad = False

    def lose(self) -> bool:
        model, rng = self.model, self.rng
        lost = rng.random() < (model.loss_bad if self.bad else model.loss_good)
        if self.bad:
            self.bad = rng.random() >= model.r
        else:
            self.bad = rng.random() < model.p
        return lost
