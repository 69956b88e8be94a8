"""The lane's statistics, sans-IO: seeded, many packets, tolerances stated per test."""

from __future__ import annotations

import random
import statistics

import pytest

from harness.packet.impairment import GilbertElliott, Impairment
from harness.packet.lane import BLACKHOLE, LOSS, QUEUE_FULL, Lane
from harness.packet.loss import GilbertElliottLoss

PACKETS = 100_000


def lane(seed: int = 7, **params: object) -> Lane:
    return Lane(Impairment.from_args(dict(params)), random.Random(seed), 0.0)


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.20])
def test_random_loss_within_one_point(rate: float) -> None:
    """Over 100,000 packets the measured loss is within 1 percentage point of the setting."""
    under = lane(loss=rate)
    delivered = sum(1 for _ in range(PACKETS) if under.admit(0.0, 1500))
    measured = 1 - delivered / PACKETS
    assert abs(measured - rate) < 0.01, measured
    assert under.counts[LOSS] == PACKETS - delivered


def test_loss_is_reproducible_from_the_seed() -> None:
    first = [bool(lane(3, loss=0.3).admit(0.0, 100)) for _ in range(50)]
    again = [bool(lane(3, loss=0.3).admit(0.0, 100)) for _ in range(50)]
    assert first == again


def test_percent_strings_are_the_same_as_fractions() -> None:
    assert Impairment.from_args({"loss": "5%"}) == Impairment.from_args({"loss": 0.05})


def test_gilbert_elliott_rate_and_burst_length() -> None:
    """Loss rate within 1 point of p/(p+r); mean burst within 10 % of 1/r (h=0, k=1)."""
    model = GilbertElliott(p=0.02, r=0.25)
    loss = GilbertElliottLoss(model, random.Random(11))
    outcomes = [loss.lose() for _ in range(PACKETS)]
    assert abs(sum(outcomes) / PACKETS - model.mean_loss) < 0.01
    bursts, run = [], 0
    for lost in outcomes:
        if lost:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert abs(statistics.mean(bursts) / (1 / model.r) - 1) < 0.10
    # The same average loss spread at random has bursts of about 1/(1-rate), far shorter.
    assert statistics.mean(bursts) > 2.5


def test_gilbert_elliott_partial_loss_in_each_state() -> None:
    """With 1-h = 0.5 and 1-k = 0.01 the long-run rate is pi_B/2 + pi_G/100, within 1 point."""
    model = GilbertElliott(p=0.05, r=0.2, loss_bad=0.5, loss_good=0.01)
    loss = GilbertElliottLoss(model, random.Random(5))
    measured = sum(loss.lose() for _ in range(PACKETS)) / PACKETS
    assert abs(measured - model.mean_loss) < 0.01


def _delays(under: Lane, count: int = 20_000) -> list[float]:
    # Arrivals 1 s apart: far beyond any jitter, so the FIFO never holds one back.
    return [(under.admit(float(i), 1500)[0].at - i) * 1000 for i in range(count)]


def test_uniform_jitter_stays_in_its_band() -> None:
    """50 +- 10 ms uniform: every delay in [40, 60] ms, mean within 0.3 ms, sd 10/sqrt(3)."""
    delays = _delays(lane(delay_ms=50, jitter_ms=10))
    assert min(delays) >= 40 and max(delays) <= 60
    assert abs(statistics.mean(delays) - 50) < 0.3
    assert abs(statistics.stdev(delays) - 10 / 3**0.5) < 0.3


def test_normal_jitter_has_its_mean_and_spread() -> None:
    """100 ms, sd 20 ms: mean within 0.5 ms, standard deviation within 0.5 ms."""
    delays = _delays(lane(delay_ms=100, jitter_ms=20, distribution="normal"))
    assert abs(statistics.mean(delays) - 100) < 0.5
    assert abs(statistics.stdev(delays) - 20) < 0.5


def test_jitter_never_reorders() -> None:
    under = lane(delay_ms=30, jitter_ms=25)
    releases = [under.admit(i * 0.001, 1500)[0].at for i in range(5000)]
    assert releases == sorted(releases)


def test_reorder_sends_that_share_ahead() -> None:
    """reorder 0.25 with 40 ms delay: 25 % +- 1 point skip the delay, the rest wait 40 ms."""
    under = lane(delay_ms=40, reorder=0.25)
    results = [under.admit(float(i), 1500)[0] for i in range(PACKETS)]
    ahead = [r for r in results if r.reordered]
    assert abs(len(ahead) / PACKETS - 0.25) < 0.01
    assert all(r.at == float(i) for i, r in enumerate(results) if r.reordered)
    assert all(abs(r.at - i - 0.040) < 1e-9 for i, r in enumerate(results) if not r.reordered)


@pytest.mark.parametrize("name", ["duplicate", "corrupt"])
def test_duplicate_and_corrupt_rates(name: str) -> None:
    """Each within 1 point of 10 % over 100,000 packets."""
    under = lane(**{name: 0.10})
    copies = [under.admit(0.0, 1500) for _ in range(PACKETS)]
    if name == "duplicate":
        share = sum(len(c) - 1 for c in copies) / PACKETS
    else:
        share = sum(c[0].corrupt for c in copies) / PACKETS
    assert abs(share - 0.10) < 0.01


def test_rate_limit_spaces_packets_and_drops_at_the_queue_limit() -> None:
    """1000 kbit/s: a 1250-byte packet holds the link 10 ms; the 11th of a burst is dropped."""
    under = lane(rate_kbit=1000, queue_limit=10)
    burst = [under.admit(0.0, 1250) for _ in range(11)]
    times = [d[0].at for d in burst[:10]]
    assert times == pytest.approx([0.01 * (i + 1) for i in range(10)])
    assert burst[10] == []
    assert under.counts[QUEUE_FULL] == 1
    # Once the queue has drained, the link takes packets again at its own pace.
    assert under.admit(0.2, 1250)[0].at == pytest.approx(0.21)


def test_rate_limit_long_run_throughput() -> None:
    """Sustained: bytes delivered / last departure equals the rate within 0.1 %."""
    under = lane(rate_kbit=4000, queue_limit=100_000)
    departures = [under.admit(i * 0.0001, 1500)[0].at for i in range(10_000)]
    assert 10_000 * 1500 * 8 / departures[-1] / 1000 == pytest.approx(4000, rel=0.001)


def test_blackhole_drops_everything() -> None:
    under = lane(blackhole=True)
    assert all(under.admit(float(i), 100) == [] for i in range(1000))
    assert under.counts[BLACKHOLE] == 1000


def test_clean_lane_delivers_at_once() -> None:
    under = lane()
    assert under.admit(1.5, 1500)[0].at == 1.5


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"loss": 1.5}, "between 0 and 1"),
        ({"loss": "five"}, r"a fraction \(0.05\) or a percentage"),
        ({"lose": 0.1}, "unknown impairment parameter 'lose'"),
        ({"reorder": 0.1}, "needs delay_ms"),
        ({"loss": 0.1, "gilbert_elliott": {"p": 0.1, "r": 0.5}}, "either loss or"),
        ({"rate_kbit": 0}, "above 0"),
        ({"queue_limit": 0}, "at least 1"),
        ({"trace": "no-such-trace"}, "no link trace 'no-such-trace'"),
        ({"gilbert_elliott": {"p": 0.1}}, "needs p and r"),
        ({"distribution": "pareto"}, "distribution must be one of"),
    ],
)
def test_bad_parameters_say_what_is_wrong(params: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Impairment.from_args(params)
