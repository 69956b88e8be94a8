"""The optional Opus track: one 20 ms packet per call, tagged with its epoch."""

from __future__ import annotations

from reference.media.audio import PACKET_SAMPLES, open_audio_encoder


def test_one_packet_per_twenty_milliseconds() -> None:
    encoder = open_audio_encoder(epoch=4)
    packets = [encoder.next_packets() for _ in range(10)]
    assert all(len(batch) == 1 for batch in packets)
    flat = [batch[0] for batch in packets]
    assert {p.epoch for p in flat} == {4}
    assert all(b.pts - a.pts == PACKET_SAMPLES for a, b in zip(flat, flat[1:], strict=False))
    assert all(p.data for p in flat)
