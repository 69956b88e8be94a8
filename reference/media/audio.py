"""Optional: an Opus audio track (48 kHz, 20 ms packets) tagged with its epoch.

Not used by the video tests. Each packet carries its epoch as data, and
the tone itself is epoch-dependent (440 Hz + 20 Hz per epoch, modulo 16),
so a listener, or a spectrum check, can tell epochs apart after decoding.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.codeccontext import AudioCodecContext

SAMPLE_RATE = 48_000
PACKET_SAMPLES = SAMPLE_RATE // 50  # 20 ms


@dataclass(frozen=True, slots=True)
class AudioPacket:
    data: bytes
    pts: int
    """In samples at 48 kHz from the epoch's start, less the encoder's pre-skip (so may be < 0)."""
    epoch: int


def tone_hz(epoch: int) -> float:
    return 440.0 + 20.0 * (epoch % 16)


class OpusEpochEncoder:
    """Encodes 20 ms of an epoch's tone per `next_packets()` call."""

    def __init__(self, epoch: int, bitrate: int) -> None:
        ctx = av.codec.CodecContext.create("libopus", "w")
        assert isinstance(ctx, AudioCodecContext)
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, SAMPLE_RATE)
        ctx.options = {"frame_duration": "20", "application": "lowdelay"}
        ctx.open()
        self._ctx = ctx
        self.epoch = epoch
        self._next_sample = 0

    def next_packets(self) -> list[AudioPacket]:
        start = self._next_sample
        step = 2 * math.pi * tone_hz(self.epoch) / SAMPLE_RATE
        samples = [round(8000 * math.sin(step * (start + i))) for i in range(PACKET_SAMPLES)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=PACKET_SAMPLES)
        frame.planes[0].update(struct.pack(f"<{PACKET_SAMPLES}h", *samples))
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._next_sample += PACKET_SAMPLES
        return [
            AudioPacket(bytes(packet), packet.pts or 0, self.epoch)
            for packet in self._ctx.encode(frame)
        ]


def open_audio_encoder(epoch: int, *, bitrate: int = 32_000) -> OpusEpochEncoder:
    return OpusEpochEncoder(epoch, bitrate)
