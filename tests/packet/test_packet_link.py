"""Link-trace replay (Mahimahi format) and the trace files the project ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.packet.impairment import SHIPPED_TRACES, resolve_trace
from harness.packet.link import TraceLink
from harness.packet.mahimahi import MahimahiError, mean_kbit, parse_trace, read_trace


def test_one_packet_per_opportunity() -> None:
    link = TraceLink([1, 2, 3, 10], queue_limit=100, start=0.0)
    assert [link.departure(0.0, 1500) for _ in range(4)] == pytest.approx(
        [0.001, 0.002, 0.003, 0.010]
    )
    # The trace repeats with period 10 ms.
    assert link.departure(0.0, 1500) == pytest.approx(0.011)


def test_small_packets_share_an_opportunity() -> None:
    link = TraceLink([5, 10], queue_limit=100, start=0.0)
    assert [link.departure(0.0, 500) for _ in range(4)] == pytest.approx(
        [0.005, 0.005, 0.005, 0.010]
    )


def test_an_unused_opportunity_is_lost() -> None:
    link = TraceLink([1, 2, 3, 4], queue_limit=100, start=0.0)
    assert link.departure(0.0, 1500) == pytest.approx(0.001)
    # Nothing queued at 2 ms and 3 ms: those opportunities pass unused.
    assert link.departure(0.0035, 1500) == pytest.approx(0.004)


def test_an_outage_holds_packets_and_the_queue_limit_drops() -> None:
    times = [1, 2, *range(2002, 2100)]  # 2 s without an opportunity
    link = TraceLink(times, queue_limit=3, start=0.0)
    got = [link.departure(0.0025, 1500) for _ in range(4)]
    assert got[:3] == pytest.approx([2.002, 2.003, 2.004])
    assert got[3] is None


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(MahimahiError, match="t:2: 'x' is not"):
        parse_trace("1\nx\n", "t")
    with pytest.raises(MahimahiError, match="t:3: 1 ms comes before 5 ms"):
        parse_trace("1\n5\n1\n", "t")
    with pytest.raises(MahimahiError, match="at least one line"):
        parse_trace("\n", "t")


@pytest.mark.parametrize("path", sorted(SHIPPED_TRACES.glob("*.mahimahi")), ids=lambda p: p.stem)
def test_shipped_traces_parse(path: Path) -> None:
    times = read_trace(path)
    assert resolve_trace(path.stem) == path
    assert 100 < mean_kbit(times) < 100_000


def test_there_are_shipped_traces() -> None:
    assert len(list(SHIPPED_TRACES.glob("*.mahimahi"))) >= 2


def test_the_generator_reproduces_the_shipped_files(tmp_path: Path) -> None:
    from harness.packet.tracegen import TRACES, write_all

    write_all(tmp_path)
    for name in TRACES:
        shipped = (SHIPPED_TRACES / f"{name}.mahimahi").read_text()
        assert (tmp_path / f"{name}.mahimahi").read_text() == shipped
