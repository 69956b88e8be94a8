"""bandwidth: throughput capped at `rate` KB/s (1 KB = 1000 bytes)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from toxiproxy_peers import ProxyHandle, RecordingSink

MakeProxy = Callable[[str], ProxyHandle]


@pytest.mark.parametrize(("rate_kb", "size"), [(2000, 800_000), (100, 60_000)])
def test_bandwidth_caps_throughput_within_ten_percent(
    make_proxy: MakeProxy, sink: RecordingSink, rate_kb: int, size: int
) -> None:
    proxy = make_proxy(sink.address)
    proxy.add_toxic("bandwidth", stream="upstream", rate=rate_kb)
    with proxy.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"b" * size)
        recording = sink.next_recording()
        recording.wait_bytes(size, timeout=30)
    elapsed = recording.reads[-1][0] - started
    measured = size / elapsed / 1000
    assert abs(measured - rate_kb) <= 0.10 * rate_kb, f"{measured:.0f} KB/s for {rate_kb}"
    assert recording.data == b"b" * size


def test_bandwidth_update_applies_live(make_proxy: MakeProxy, sink: RecordingSink) -> None:
    proxy = make_proxy(sink.address)
    proxy.add_toxic("bandwidth", stream="upstream", rate=50)
    with proxy.connect() as sock:
        sock.sendall(b"s" * 5_000)
        recording = sink.next_recording()
        recording.wait_bytes(5_000)
        proxy.update_toxic("bandwidth_upstream", attributes={"rate": 0})
        proxy.update_toxic("bandwidth_upstream", attributes={"rate": 100_000})
        started = time.monotonic()
        sock.sendall(b"f" * 1_000_000)
        recording.wait_bytes(1_005_000)
    assert recording.reads[-1][0] - started < 0.5


def test_removing_bandwidth_mid_chunk_delivers_every_byte_once(
    make_proxy: MakeProxy, sink: RecordingSink
) -> None:
    """A read bigger than a 100 ms slice goes out slice by slice; a removal between two
    slices hands on the rest of that read, not the slices already sent."""
    proxy = make_proxy(sink.address)
    proxy.add_toxic("bandwidth", stream="upstream", rate=100)  # 10 KB slices
    payload = bytes(range(256)) * 800  # 204,800 bytes, most of them one read
    with proxy.connect() as sock:
        sock.sendall(payload)
        recording = sink.next_recording()
        recording.wait_bytes(30_000)  # a few slices out, the rest still held
        proxy.remove_toxic("bandwidth_upstream")
        recording.wait_bytes(len(payload))
    assert recording.data[: len(payload)] == payload
    assert len(recording.data) == len(payload)
