"""The Primary's H.264 encoder: pictures in, LVS-ready access units out.

Every backend is an FFmpeg encoder reached through PyAV, opened with its
low-latency settings: no B-frames, no lookahead, one unit out per picture
in. Output is cut at NAL unit boundaries so the parameter sets (the CSD
frame's payload) travel apart from the access unit (the VIDEO frame's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
from av.codec.context import CodecContext
from av.codec.hwaccel import HWAccel
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from .annexb import AnnexBError, join_nal_units, separate_parameter_sets, split_nal_units
from .backends import AUTO, ENCODER_BACKENDS, EncoderBackend, encoder_backend
from .errors import EncoderFailure
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
class EncodedUnit:
    """One access unit, split the way LVS sends it.

    `data` is the Annex B access unit without SPS/PPS (a VIDEO frame's
    payload); `csd` is the SPS/PPS Annex B units, set on keyframes only
    (a CSD frame's payload). `pts` is in 1/fps units.
    """

    data: bytes
    keyframe: bool
    pts: int
    csd: bytes | None


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    width: int
    height: int
    fps: Fraction
    bitrate: int
    """Target bits per second; also the VBV ceiling, so bursts stay short."""
    gop: int
    """Pictures between scheduled keyframes; requested keyframes come on top."""


class VideoEncoder(Protocol):
    """What the Primary needs from an encoder, whichever backend it is."""

    @property
    def backend(self) -> str: ...
    @property
    def codec_name(self) -> str: ...
    @property
    def settings(self) -> EncoderSettings: ...
    @property
    def probe_report(self) -> tuple[ProbeOutcome, ...]: ...
    def encode(
        self, picture: av.VideoFrame, *, force_keyframe: bool = False
    ) -> list[EncodedUnit]: ...
    def flush(self) -> list[EncodedUnit]: ...
    def close(self) -> None: ...


def _open_context(backend: EncoderBackend, settings: EncoderSettings) -> VideoCodecContext:
    hwaccel = None
    if backend.hw_device is not None:
        require_hw_device(backend.hw_device)
        hwaccel = HWAccel(backend.hw_device, allow_software_fallback=False)
    ctx = CodecContext.create(backend.codec, "w", hwaccel=hwaccel)
    assert isinstance(ctx, VideoCodecContext)
    ctx.width = settings.width
    ctx.height = settings.height
    ctx.pix_fmt = backend.pix_fmt
    ctx.time_base = 1 / settings.fps
    ctx.framerate = settings.fps
    ctx.bit_rate = settings.bitrate
    ctx.gop_size = settings.gop
    ctx.max_b_frames = 0
    ctx.options = applicable_options(
        ctx,
        {
            **backend.options,
            "maxrate": str(settings.bitrate),
            # Half a second of VBV: room for a keyframe without letting the
            # encoder bank seconds of latency.
            "bufsize": str(settings.bitrate // 2),
        },
    )
    ctx.open()
    return ctx


def _prove(backend: EncoderBackend, settings: EncoderSettings) -> None:
    """Open `backend` and encode one grey picture; refuse it if no unit comes out.

    A unit must come out for that one picture without a flush: an encoder
    that holds pictures back cannot serve a live stream.
    """
    ctx = _open_context(backend, settings)
    try:
        picture = av.VideoFrame(settings.width, settings.height, "yuv420p")
        for plane in picture.planes:
            plane.update(b"\x80" * plane.buffer_size)
        picture.pts = 0
        if not ctx.encode(picture):
            raise BackendRefused(
                "no packet came out for the probe picture: the encoder delays "
                "pictures, which a low-latency stream cannot accept"
            )
    finally:
        del ctx


class FFmpegVideoEncoder:
    """A `VideoEncoder` backed by one FFmpeg encoder (hardware or libx264)."""

    def __init__(
        self,
        backend: EncoderBackend,
        settings: EncoderSettings,
        probe_report: Sequence[ProbeOutcome] = (),
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._probe_report = tuple(probe_report)
        self._ctx: VideoCodecContext | None = _open_context(backend, settings)
        self._last_csd: bytes | None = None
        self._next_pts = 0

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def codec_name(self) -> str:
        return self._backend.codec

    @property
    def settings(self) -> EncoderSettings:
        return self._settings

    @property
    def probe_report(self) -> tuple[ProbeOutcome, ...]:
        return self._probe_report

    def encode(self, picture: av.VideoFrame, *, force_keyframe: bool = False) -> list[EncodedUnit]:
        ctx = self._open_ctx()
        previous_type = picture.pict_type
        # FFmpeg reads pict_type as an order: I forces an IDR (forced-idr is
        # set), NONE lets the GOP decide. Reset it either way so a decoded
        # picture fed back in cannot force keyframes by accident.
        picture.pict_type = PictureType.I if force_keyframe else PictureType.NONE
        if picture.pts is None:
            picture.pts = self._next_pts
        try:
            with ffmpeg_messages() as messages:
                packets = ctx.encode(picture)
        except av.FFmpegError as exc:
            raise EncoderFailure(self.backend, describe_failure(exc, messages)) from exc
        finally:
            picture.pict_type = previous_type
        self._next_pts = picture.pts + 1
        return [self._unit(packet) for packet in packets]

    def flush(self) -> list[EncodedUnit]:
        """The units still inside the encoder. Ends the stream: no `encode` after it."""
        ctx = self._open_ctx()
        try:
            with ffmpeg_messages() as messages:
                packets = ctx.encode(None)
        except av.FFmpegError as exc:
            raise EncoderFailure(self.backend, describe_failure(exc, messages)) from exc
        return [self._unit(packet) for packet in packets]

    def close(self) -> None:
        # PyAV frees the codec (and any hardware device it holds) with the
        # last reference; there is no explicit close.
        self._ctx = None

    def __enter__(self) -> FFmpegVideoEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_ctx(self) -> VideoCodecContext:
        if self._ctx is None:
            raise EncoderFailure(self.backend, "the encoder is closed")
        return self._ctx

    def _unit(self, packet: av.Packet[Any]) -> EncodedUnit:
        try:
            units = split_nal_units(bytes(packet))
        except AnnexBError as exc:
            raise EncoderFailure(self.backend, f"output is not Annex B: {exc}") from exc
        parameter_sets, others = separate_parameter_sets(units)
        csd = join_nal_units(parameter_sets) if parameter_sets else None
        keyframe = packet.is_keyframe
        if keyframe:
            # An encoder that keeps its headers out of band (global header)
            # still lets a Viewer join at this keyframe, with the last CSD.
            csd = csd or self._last_csd
            if csd is None:
                raise EncoderFailure(self.backend, "keyframe without SPS/PPS")
            self._last_csd = csd
        elif csd is not None:
            if csd != self._last_csd:
                raise EncoderFailure(self.backend, "parameter sets changed on a delta unit")
            csd = None
        pts = packet.pts if packet.pts is not None else self._next_pts - 1
        return EncodedUnit(data=join_nal_units(others), keyframe=keyframe, pts=pts, csd=csd)


def encoder_settings(
    *, width: int, height: int, fps: int | Fraction, bitrate: int, gop: int | None = None
) -> EncoderSettings:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"picture size must be positive and even, got {width}x{height}")
    rate = Fraction(fps)
    if rate <= 0 or bitrate <= 0:
        raise ValueError(f"fps and bitrate must be positive, got {fps} and {bitrate}")
    # Two seconds between scheduled keyframes unless told otherwise.
    keyframe_interval = gop if gop is not None else round(2 * rate)
    return EncoderSettings(width, height, rate, bitrate, keyframe_interval)


def _candidates(backend: str) -> tuple[EncoderBackend, ...]:
    return ENCODER_BACKENDS if backend == AUTO else (encoder_backend(backend),)


def open_encoder(
    backend: str = AUTO,
    *,
    width: int,
    height: int,
    fps: int | Fraction,
    bitrate: int,
    gop: int | None = None,
) -> FFmpegVideoEncoder:
    """An open encoder on `backend`, or on the first working one for "auto".

    Raises `BackendUnavailable` naming the backend and FFmpeg's reason when
    a named backend does not work (or, for "auto", when none does), and
    ValueError for a name no table lists.
    """
    settings = encoder_settings(width=width, height=height, fps=fps, bitrate=bitrate, gop=gop)

    def attempt(candidate: EncoderBackend) -> FFmpegVideoEncoder:
        _prove(candidate, settings)
        # The probe context has coded a picture; the stream starts on a fresh one.
        return FFmpegVideoEncoder(candidate, settings)

    encoder, report = select_backend("encoder", backend, _candidates(backend), attempt)
    encoder._probe_report = report
    return encoder


def probe_encoders(
    *, width: int = 320, height: int = 180, fps: int | Fraction = 30, bitrate: int = 500_000
) -> list[ProbeOutcome]:
    """Probe every encoder backend in order, not stopping at the first that works."""
    settings = encoder_settings(width=width, height=height, fps=fps, bitrate=bitrate)

    def attempt(candidate: EncoderBackend) -> bool:
        _prove(candidate, settings)
        return True

    return [try_backend("encoder", candidate, attempt)[1] for candidate in ENCODER_BACKENDS]
