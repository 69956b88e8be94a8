"""Which FFmpeg codecs back each backend name, and the order `auto` probes them.

The tables are the single place that says what a backend is. The probe,
the encoder, the decoder and README.md all read from here. Options are
the low-latency settings for that codec; options a given FFmpeg build does
not know are dropped at open time (see `probe.applicable_options`), so a
newer or older FFmpeg degrades to its defaults instead of refusing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SOFTWARE = "software"
AUTO = "auto"


@dataclass(frozen=True, slots=True)
class EncoderBackend:
    name: str
    codec: str
    """The FFmpeg encoder (`ffmpeg -encoders`)."""
    needs: str
    """What the machine must have, in words; shown in errors and README.md."""
    pix_fmt: str = "yuv420p"
    """Pixel format the encoder is opened with; PyAV converts pictures to it."""
    hw_device: str | None = None
    """FFmpeg hardware device type when frames must be uploaded (VAAPI)."""
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class DecoderBackend:
    name: str
    codec: str
    """The FFmpeg decoder (`ffmpeg -decoders`)."""
    needs: str
    hw_device: str | None = None
    """FFmpeg hwaccel device type for decoders that reuse FFmpeg's own parser."""
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _frozen(**options: str) -> Mapping[str, str]:
    return MappingProxyType(dict(options))


# Probe order for `auto`: dedicated encoder ASICs before general GPU paths,
# vendor SDKs before the generic VAAPI/V4L2 paths (which also match the
# vendor hardware, with fewer low-latency knobs), software last.
ENCODER_BACKENDS: tuple[EncoderBackend, ...] = (
    EncoderBackend(
        name="nvenc",
        codec="h264_nvenc",
        needs="an NVIDIA GPU with an NVENC unit and libcuda.so.1 (driver); "
        "data-centre parts such as H100 have no NVENC",
        options=_frozen(
            preset="p1",
            tune="ull",
            zerolatency="1",
            delay="0",
            rc="cbr",
            **{"forced-idr": "1", "no-scenecut": "1"},
        ),
    ),
    EncoderBackend(
        name="qsv",
        codec="h264_qsv",
        needs="an Intel GPU with Quick Sync and the oneVPL runtime (libmfx-gen / libvpl)",
        pix_fmt="nv12",
        options=_frozen(
            preset="veryfast",
            async_depth="1",
            look_ahead="0",
            low_delay_brc="1",
            forced_idr="1",
        ),
    ),
    EncoderBackend(
        name="amf",
        codec="h264_amf",
        needs="an AMD GPU and the AMF runtime (libamfrt64.so.1, from the AMD driver)",
        pix_fmt="nv12",
        options=_frozen(usage="ultralowlatency", quality="speed", forced_idr="1"),
    ),
    EncoderBackend(
        name="vaapi",
        codec="h264_vaapi",
        needs="an FFmpeg built with VAAPI, a /dev/dri render node and a VA driver "
        "(intel-media-driver, mesa-va-drivers)",
        pix_fmt="nv12",
        hw_device="vaapi",
        options=_frozen(async_depth="1"),
    ),
    EncoderBackend(
        name="v4l2m2m",
        codec="h264_v4l2m2m",
        needs="a V4L2 memory-to-memory encoder device (/dev/video*), e.g. Raspberry Pi",
    ),
    EncoderBackend(
        name=SOFTWARE,
        codec="libx264",
        needs="an FFmpeg built with libx264 (PyAV's wheels are)",
        options=_frozen(
            preset="veryfast",
            tune="zerolatency",
            **{"forced-idr": "1"},
            # scenecut=0: keyframes come only from the GOP and from requests,
            # so a trace's keyframes are explainable. annexb/repeat-headers are
            # x264's defaults, spelled out because the CSD split relies on them.
            **{"x264-params": "scenecut=0:annexb=1:repeat-headers=1"},
        ),
    ),
)

# err_detect=explode on the decoders that use FFmpeg's own H.264 parser: a
# damaged access unit must raise rather than be concealed, because a
# concealed picture would hide the fault the harness injected.
# nvdec (FFmpeg's parser + NVDEC hwaccel) comes before cuvid because it has
# the software decoder's error handling and no display queue; cuvid is kept
# as the second route to the same NVDEC silicon.
DECODER_BACKENDS: tuple[DecoderBackend, ...] = (
    DecoderBackend(
        name="nvdec",
        codec="h264",
        hw_device="cuda",
        needs="an NVIDIA GPU with NVDEC and libcuda.so.1 (driver)",
        options=_frozen(err_detect="explode"),
    ),
    DecoderBackend(
        name="cuvid",
        codec="h264_cuvid",
        needs="an NVIDIA GPU with NVDEC, libcuda.so.1 and libnvcuvid.so.1 (driver)",
    ),
    DecoderBackend(
        name="qsv",
        codec="h264_qsv",
        needs="an Intel GPU with Quick Sync and the oneVPL runtime",
        options=_frozen(async_depth="1"),
    ),
    DecoderBackend(
        name="amf",
        codec="h264_amf",
        needs="an AMD GPU and the AMF runtime (libamfrt64.so.1)",
    ),
    DecoderBackend(
        name="vaapi",
        codec="h264",
        hw_device="vaapi",
        needs="an FFmpeg built with VAAPI, a /dev/dri render node and a VA driver",
        options=_frozen(err_detect="explode"),
    ),
    DecoderBackend(
        name="v4l2m2m",
        codec="h264_v4l2m2m",
        needs="a V4L2 memory-to-memory decoder device (/dev/video*)",
    ),
    DecoderBackend(
        name=SOFTWARE,
        codec="h264",
        needs="nothing beyond FFmpeg's built-in H.264 decoder",
        options=_frozen(err_detect="explode"),
    ),
)


def encoder_backend(name: str) -> EncoderBackend:
    for backend in ENCODER_BACKENDS:
        if backend.name == name:
            return backend
    known = ", ".join([AUTO, *(b.name for b in ENCODER_BACKENDS)])
    raise ValueError(f"unknown encoder backend {name!r}; known: {known}")


def decoder_backend(name: str) -> DecoderBackend:
    for backend in DECODER_BACKENDS:
        if backend.name == name:
            return backend
    known = ", ".join([AUTO, *(b.name for b in DECODER_BACKENDS)])
    raise ValueError(f"unknown decoder backend {name!r}; known: {known}")
