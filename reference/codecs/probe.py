"""Backend selection: try each candidate for real, keep the first that works.

A backend counts as working only after it has been opened and has passed
one picture through (see `encoder.prove_encoder` / `decoder.prove_decoder`):
FFmpeg happily opens some hardware codecs (h264_qsv's decoder, for one)
that fail on the first packet. Every refusal is logged on the
`reference.codecs` logger with the text FFmpeg gave, and returned as data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import NamedTuple, Protocol, TypeVar

import av
import av.logging
from av.codec.codec import UnknownCodecError
from av.codec.context import CodecContext
from av.codec.hwaccel import hwdevices_available

from .backends import AUTO
from .errors import BackendUnavailable

logger = logging.getLogger("reference.codecs")


class ProbeOutcome(NamedTuple):
    """One row of a probe report: was `backend` usable, and why (not)."""

    backend: str
    ok: bool
    reason: str


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class BackendRefused(Exception):
    """A probe step found the backend unusable; the message is the reason."""


BackendT = TypeVar("BackendT", bound=_Named)
OpenedT = TypeVar("OpenedT")

FFmpegMessage = tuple[int, str, str]


@contextmanager
def ffmpeg_messages() -> Iterator[list[FFmpegMessage]]:
    """Collect FFmpeg's log lines from this thread while the block runs.

    PyAV keeps FFmpeg's logging off by default, and the exception text alone
    is often just "Operation not permitted"; the reason (say "Cannot load
    libcuda.so.1") is only in the log. Logging is switched on at error level
    for the duration, never quieter than the caller already had it.
    """
    previous = av.logging.get_level()
    wanted = av.logging.ERROR if previous is None else max(previous, av.logging.ERROR)
    av.logging.set_level(wanted)
    try:
        with av.logging.Capture(local=True) as messages:
            yield messages
    finally:
        av.logging.set_level(previous)


def describe_failure(exc: BaseException, messages: Sequence[FFmpegMessage]) -> str:
    """The exception text, plus FFmpeg's error lines it does not already contain."""
    if isinstance(exc, UnknownCodecError):
        text = f"this FFmpeg build has no codec named {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    extra = [
        f"[{source}] {message.strip()}"
        for level, source, message in messages
        if level <= av.logging.ERROR and message.strip() and message.strip() not in text
    ]
    return "; ".join([text, *dict.fromkeys(extra)])


def require_hw_device(device_type: str) -> None:
    available = hwdevices_available()
    if device_type not in available:
        raise BackendRefused(
            f"this FFmpeg build has no {device_type!r} hardware device type "
            f"(it has: {', '.join(available) or 'none'})"
        )


def applicable_options(ctx: CodecContext, wanted: Mapping[str, str]) -> dict[str, str]:
    """`wanted` minus the options this FFmpeg build's codec does not know."""
    supported = ctx.supported_options
    known = {option.name for option in (*supported.generic, *supported.private)}
    dropped = sorted(set(wanted) - known)
    if dropped:
        logger.debug("%s: this FFmpeg build ignores options %s", ctx.name, dropped)
    return {name: value for name, value in wanted.items() if name in known}


def try_backend(
    role: str, backend: BackendT, attempt: Callable[[BackendT], OpenedT]
) -> tuple[OpenedT | None, ProbeOutcome]:
    """Run `attempt` on `backend`; turn any failure into a refusal with its reason."""
    try:
        with ffmpeg_messages() as messages:
            try:
                opened = attempt(backend)
            except BackendRefused:
                raise
            # A driver or runtime can fail in any way; whatever it raises is
            # the reason this backend is refused, not a crash.
            except Exception as exc:
                raise BackendRefused(describe_failure(exc, messages)) from exc
    except BackendRefused as refusal:
        logger.info("%s backend %r refused: %s", role, backend.name, refusal)
        return None, ProbeOutcome(backend.name, False, str(refusal))
    return opened, ProbeOutcome(backend.name, True, "opened and passed a probe picture")


def select_backend(
    role: str,
    requested: str,
    candidates: Sequence[BackendT],
    attempt: Callable[[BackendT], OpenedT],
) -> tuple[OpenedT, tuple[ProbeOutcome, ...]]:
    """Open the first candidate `attempt` accepts; raise if none does.

    `role` ("encoder"/"decoder") only labels log lines. With one candidate
    (an explicitly named backend) its refusal is raised as-is, so the
    caller sees that backend's own reason rather than a fallback.
    """
    report: list[ProbeOutcome] = []
    for backend in candidates:
        opened, outcome = try_backend(role, backend, attempt)
        report.append(outcome)
        if opened is None:
            continue
        refused = [f"{o.backend} ({o.reason})" for o in report if not o.ok]
        logger.info(
            "%s backend %r chosen (%s)%s",
            role,
            backend.name,
            "requested" if requested != AUTO else "auto",
            f"; refused before it: {'; '.join(refused)}" if refused else "",
        )
        return opened, tuple(report)
    if len(report) == 1:
        raise BackendUnavailable(report[0].backend, report[0].reason)
    summary = "; ".join(f"{o.backend}: {o.reason}" for o in report)
    raise BackendUnavailable(requested, f"no {role} backend works: {summary}")
