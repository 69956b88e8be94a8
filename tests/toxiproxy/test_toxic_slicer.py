"""slicer: one write arrives as several smaller reads, data intact."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from toxiproxy_peers import ProxyHandle, RecordingSink

from harness.toxiproxy.toxics import SlicerToxic

MakeProxy = Callable[[str], ProxyHandle]


def test_slicer_splits_one_write_into_many_reads(
    make_proxy: MakeProxy, sink: RecordingSink
) -> None:
    proxy = make_proxy(sink.address)
    proxy.add_toxic("slicer", stream="upstream", average_size=100, size_variation=20,
                    delay=2000)
    payload = bytes(range(256)) * 8  # one 2048-byte write
    with proxy.connect() as sock:
        sock.sendall(payload)
        recording = sink.next_recording()
        recording.wait_bytes(len(payload))
    assert recording.data == payload
    assert len(recording.reads) >= 8, [len(chunk) for _, chunk in recording.reads]


def test_cut_points_respect_the_sizes() -> None:
    toxic = SlicerToxic(average_size=100, size_variation=20)
    points = toxic.cut_points(10_000, random.Random(1))
    sizes = [b - a for a, b in itertools.pairwise(points)]
    assert points[0] == 0 and points[-1] == 10_000
    assert all(0 < size <= 120 for size in sizes), sizes
    assert 60 <= sum(sizes) / len(sizes) <= 120
