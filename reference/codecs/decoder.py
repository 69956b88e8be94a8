"""The Viewer's H.264 decoder: LVS CSD and VIDEO payloads in, pictures out.

The CSD (SPS/PPS) given to `configure` is sent in band in front of every
keyframe, exactly as the encoder produced it before the split, so every
backend sees an ordinary Annex B stream and a keyframe is always a clean
entry point. Bytes are checked before FFmpeg sees them, and whatever FFmpeg
still rejects comes back as `DecodeError`: garbage never takes the process
down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Protocol

import av
from av.codec.context import CodecContext, Flags
from av.codec.hwaccel import HWAccel
from av.video.codeccontext import VideoCodecContext

from reference.media.picture import LumaPlane

from .annexb import (
    PARAMETER_SET_TYPES,
    SLICE_TYPES,
    AnnexBError,
    nal_type,
    separate_parameter_sets,
    split_nal_units,
)
from .backends import AUTO, DECODER_BACKENDS, DecoderBackend, decoder_backend
from .errors import DecodeError, KeyframeRequired
from .probe import (
    BackendRefused,
    ProbeOutcome,
    applicable_options,
    describe_failure,
    ffmpeg_messages,
    require_hw_device,
    select_backend,
    try_backend,
)


@dataclass(frozen=True, slots=True)
class DecodedPicture:
    """A decoded picture in system memory (hardware backends download it)."""

    pts: int
    frame: av.VideoFrame

    @property
    def width(self) -> int:
        return self.frame.width

    @property
    def height(self) -> int:
        return self.frame.height

    def luma(self) -> LumaPlane:
        """A copy of the luma plane; only made when asked, decoding stays cheap."""
        return LumaPlane.from_frame(self.frame)


class VideoDecoder(Protocol):
    """What the Viewer needs from a decoder, whichever backend it is."""

    @property
    def backend(self) -> str: ...
    @property
    def codec_name(self) -> str: ...
    @property
    def probe_report(self) -> tuple[ProbeOutcome, ...]: ...
    def configure(self, csd: bytes) -> None: ...
    def decode(self, data: bytes, *, keyframe: bool, pts: int) -> list[DecodedPicture]: ...
    def drain(self) -> list[DecodedPicture]: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


def _open_context(backend: DecoderBackend) -> VideoCodecContext:
    hwaccel = None
    if backend.hw_device is not None:
        require_hw_device(backend.hw_device)
        hwaccel = HWAccel(backend.hw_device, allow_software_fallback=False)
    ctx = CodecContext.create(backend.codec, "r", hwaccel=hwaccel)
    assert isinstance(ctx, VideoCodecContext)
    if hwaccel is not None and not ctx.is_hwaccel:
        raise BackendRefused(
            f"{backend.codec} offers no {backend.hw_device!r} hardware configuration"
        )
    # low_delay: output each picture as soon as it is decoded (cuvid also
    # drops its display queue); slice threads add no frame of delay, frame
    # threads would.
    ctx.flags |= Flags.low_delay
    ctx.thread_type = "SLICE"
    ctx.options = applicable_options(ctx, backend.options)
    ctx.open()
    return ctx


@cache
def _probe_stream() -> tuple[bytes, bytes]:
    """(csd, keyframe) of one small libx264 picture: what decoder probes decode."""
    ctx = CodecContext.create("libx264", "w")
    assert isinstance(ctx, VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 320, 180, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    picture = av.VideoFrame(320, 180, "yuv420p")
    for plane in picture.planes:
        plane.update(b"\x80" * plane.buffer_size)
    picture.pts = 0
    packets = [*ctx.encode(picture), *ctx.encode(None)]
    parameter_sets, others = separate_parameter_sets(split_nal_units(bytes(packets[0])))
    return _annexb(parameter_sets), _annexb(others)


def _annexb(units: Sequence[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


def _prove(backend: DecoderBackend) -> None:
    """Open `backend` and decode the probe keyframe; refuse it if no picture comes out."""
    csd, keyframe = _probe_stream()
    ctx = _open_context(backend)
    try:
        packet = av.Packet(csd + keyframe)
        packet.pts = 0
        # Hardware decoders may queue the picture; draining is allowed here,
        # only whether a correct picture comes out at all is being asked.
        frames = [*ctx.decode(packet), *ctx.decode(None)]
        if not frames:
            raise BackendRefused("the probe keyframe decoded to no picture")
        if (frames[0].width, frames[0].height) != (320, 180):
            raise BackendRefused(
                f"the probe keyframe decoded to {frames[0].width}x{frames[0].height}, not 320x180"
            )
        LumaPlane.from_frame(frames[0])
    finally:
        del ctx


class FFmpegVideoDecoder:
    """A `VideoDecoder` backed by one FFmpeg decoder (hardware or software)."""

    def __init__(self, backend: DecoderBackend, probe_report: Sequence[ProbeOutcome] = ()) -> None:
        self._backend = backend
        self._probe_report = tuple(probe_report)
        self._ctx: VideoCodecContext | None = _open_context(backend)
        self._csd: bytes | None = None
        # Until a keyframe decodes, a delta unit has nothing to refer to.
        self._awaiting_keyframe = True

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def codec_name(self) -> str:
        return self._backend.codec

    @property
    def probe_report(self) -> tuple[ProbeOutcome, ...]:
        return self._probe_report

    @property
    def awaiting_keyframe(self) -> bool:
        return self._awaiting_keyframe

    def configure(self, csd: bytes) -> None:
        """Use `csd` (SPS/PPS, Annex B) from the next keyframe on."""
        try:
            units = split_nal_units(csd)
        except AnnexBError as exc:
            raise DecodeError(self.backend, f"CSD is not Annex B: {exc}") from exc
        types = {nal_type(unit) for unit in units}
        if types != PARAMETER_SET_TYPES:
            raise DecodeError(
                self.backend, f"CSD must hold SPS and PPS only, got NAL types {sorted(types)}"
            )
        if csd != self._csd:
            self._csd = csd
            self._awaiting_keyframe = True

    def decode(self, data: bytes, *, keyframe: bool, pts: int) -> list[DecodedPicture]:
        """Decode one access unit; usually one picture out, none while a hardware queue fills."""
        ctx = self._open_ctx()
        if self._csd is None:
            raise DecodeError(self.backend, "no CSD: configure() must come before decode()")
        try:
            self._check_access_unit(data)
        except DecodeError:
            # The unit is lost whatever it was, so the deltas after it have
            # nothing sound to refer to.
            self._awaiting_keyframe = True
            raise
        if self._awaiting_keyframe and not keyframe:
            raise KeyframeRequired(
                self.backend,
                "a delta unit arrived while awaiting a keyframe (after configure, reset, "
                "drain or a decode error)",
            )
        packet = av.Packet(self._csd + data if keyframe else data)
        packet.pts = pts
        try:
            with ffmpeg_messages() as messages:
                frames = ctx.decode(packet)
        except av.FFmpegError as exc:
            # Reference pictures may now be damaged: nothing but a keyframe
            # can be trusted until one arrives.
            self._awaiting_keyframe = True
            raise DecodeError(self.backend, describe_failure(exc, messages)) from exc
        if keyframe:
            self._awaiting_keyframe = False
        return [self._picture(frame, pts) for frame in frames]

    def drain(self) -> list[DecodedPicture]:
        """Pictures the decoder still holds (end of stream); then it waits for a keyframe."""
        ctx = self._open_ctx()
        try:
            with ffmpeg_messages() as messages:
                frames = ctx.decode(None)
        except av.FFmpegError as exc:
            raise DecodeError(self.backend, describe_failure(exc, messages)) from exc
        finally:
            self._reopen(keep_csd=True)
        return [self._picture(frame, -1) for frame in frames]

    def reset(self) -> None:
        """Drop all decoder state, CSD included: the next stream starts with configure()."""
        self._open_ctx()
        self._reopen(keep_csd=False)

    def close(self) -> None:
        # PyAV frees the codec (and any hardware device it holds) with the
        # last reference; there is no explicit close.
        self._ctx = None

    def __enter__(self) -> FFmpegVideoDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_ctx(self) -> VideoCodecContext:
        if self._ctx is None:
            raise DecodeError(self.backend, "the decoder is closed")
        return self._ctx

    def _reopen(self, *, keep_csd: bool) -> None:
        # A fresh context rather than flush_buffers(): it also forgets the
        # SPS/PPS FFmpeg has parsed, which a reconfiguration must not inherit.
        self.close()
        self._ctx = _open_context(self._backend)
        if not keep_csd:
            self._csd = None
        self._awaiting_keyframe = True

    def _check_access_unit(self, data: bytes) -> None:
        try:
            units = split_nal_units(data)
        except AnnexBError as exc:
            raise DecodeError(self.backend, f"access unit is not Annex B: {exc}") from exc
        if not any(nal_type(unit) in SLICE_TYPES for unit in units):
            raise DecodeError(
                self.backend,
                f"access unit has no slice (NAL types {[nal_type(u) for u in units]})",
            )

    @staticmethod
    def _picture(frame: av.VideoFrame, fallback_pts: int) -> DecodedPicture:
        return DecodedPicture(frame.pts if frame.pts is not None else fallback_pts, frame)


def _candidates(backend: str) -> tuple[DecoderBackend, ...]:
    return DECODER_BACKENDS if backend == AUTO else (decoder_backend(backend),)


def open_decoder(backend: str = AUTO) -> FFmpegVideoDecoder:
    """An open decoder on `backend`, or on the first working one for "auto".

    Raises `BackendUnavailable` naming the backend and FFmpeg's reason when
    a named backend does not work (or, for "auto", when none does), and
    ValueError for a name no table lists.
    """

    def attempt(candidate: DecoderBackend) -> FFmpegVideoDecoder:
        _prove(candidate)
        return FFmpegVideoDecoder(candidate)

    decoder, report = select_backend("decoder", backend, _candidates(backend), attempt)
    decoder._probe_report = report
    return decoder


def probe_decoders() -> list[ProbeOutcome]:
    """Probe every decoder backend in order, not stopping at the first that works."""

    def attempt(candidate: DecoderBackend) -> bool:
        _prove(candidate)
        return True

    return [try_backend("decoder", candidate, attempt)[1] for candidate in DECODER_BACKENDS]
