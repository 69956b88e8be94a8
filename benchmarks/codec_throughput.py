"""Software codec throughput: pictures per second through libx264 and FFmpeg's h264.

    .venv/bin/python benchmarks/codec_throughput.py [--frames 150] [--warmup 30]

Only `encode()` and `decode()` are on the clock (including the Annex B
split and the checks around FFmpeg: what the Primary and the Viewer
actually pay); making pictures and auditing them is not. Every decoded
picture is audited, so a fast but wrong run cannot pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass

import av
from rich.console import Console
from rich.table import Table

from reference.codecs import EncodedUnit, open_decoder, open_encoder
from reference.codecs.backends import encoder_backend
from reference.media import SyntheticSource, audit_picture

FPS = 30
SIZES = ((640, 360, 800_000), (1280, 720, 2_000_000))


@dataclass(frozen=True)
class Measurement:
    width: int
    height: int
    bitrate: int
    frames: int
    encode_fps: float
    decode_fps: float
    achieved_kbps: float
    audited: int


def measure(width: int, height: int, bitrate: int, frames: int, warmup: int) -> Measurement:
    source = SyntheticSource(width, height, FPS, epoch=1)
    encoder = open_encoder("software", width=width, height=height, fps=FPS, bitrate=bitrate)
    decoder = open_decoder("software")

    # Only encode() and decode() are on the clock; each picture is made just
    # before and audited just after, then dropped, as in a live peer (holding
    # every decoded picture would time page faults instead of the codec).
    units: list[EncodedUnit] = []
    encode_seconds = 0.0
    for number in range(warmup + frames):
        picture = source.picture(number)
        started = time.perf_counter()
        out = encoder.encode(picture)
        if number >= warmup:
            encode_seconds += time.perf_counter() - started
        units.extend(out)

    decode_seconds = 0.0
    audited = decoded = 0
    for index, unit in enumerate(units):
        started = time.perf_counter()
        if unit.csd is not None:
            decoder.configure(unit.csd)
        pictures = decoder.decode(unit.data, keyframe=unit.keyframe, pts=unit.pts)
        if index >= warmup:
            decode_seconds += time.perf_counter() - started
            decoded += len(pictures)
            audited += sum(audit_picture(p.luma()) == source.expected(p.pts) for p in pictures)

    payload_bits = 8 * sum(len(u.data) + len(u.csd or b"") for u in units[warmup:])
    return Measurement(
        width,
        height,
        bitrate,
        frames,
        encode_fps=frames / encode_seconds,
        decode_fps=decoded / decode_seconds,
        achieved_kbps=payload_bits / (frames / FPS) / 1000,
        audited=audited,
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="timed pictures per size")
    parser.add_argument("--warmup", type=int, default=30, help="untimed pictures first")
    args = parser.parse_args()

    software = encoder_backend("software")
    console = Console()
    console.print(
        f"PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({_cpu_model()})"
    )
    console.print(
        f"encoder {software.codec} preset={software.options['preset']} "
        f"tune={software.options['tune']}, decoder h264 (slice threads), {FPS} fps source"
    )
    table = Table(title="Software codec throughput (pictures per second)")
    for column in ("size", "target kbit/s", "achieved kbit/s", "encode fps", "decode fps"):
        table.add_column(column, justify="right")
    table.add_column("audited", justify="right")
    for width, height, bitrate in SIZES:
        m = measure(width, height, bitrate, args.frames, args.warmup)
        table.add_row(
            f"{m.width}x{m.height}",
            f"{m.bitrate // 1000}",
            f"{m.achieved_kbps:.0f}",
            f"{m.encode_fps:.0f}",
            f"{m.decode_fps:.0f}",
            f"{m.audited}/{m.frames}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
