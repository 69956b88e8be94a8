"""Backend probing: every hardware backend is really tried, software is the fallback.

Nothing here is mocked: on a machine without GPUs (CI) the hardware probes
fail inside FFmpeg for real, and the tests check that the failure is
reported, logged, and answered with the software backend.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reference.codecs import (
    DECODER_BACKENDS,
    ENCODER_BACKENDS,
    SOFTWARE,
    BackendUnavailable,
    ProbeOutcome,
    open_decoder,
    open_encoder,
    probe_decoders,
    probe_encoders,
)

HARDWARE_ENCODERS = [b.name for b in ENCODER_BACKENDS if b.name != SOFTWARE]
HARDWARE_DECODERS = [b.name for b in DECODER_BACKENDS if b.name != SOFTWARE]

# Independent of the code under test: where any of these exist, a hardware
# backend may legitimately work and the "everything refused" checks do not apply.
_HARDWARE_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dri", "/dev/kfd")
machine_has_gpu = any(Path(node).exists() for node in _HARDWARE_NODES)
needs_gpu_less_machine = pytest.mark.skipif(
    machine_has_gpu, reason="a GPU device node exists; hardware may really work here"
)


def _check_report_shape(report: tuple[ProbeOutcome, ...] | list[ProbeOutcome]) -> None:
    """The first working backend ends the report; all before it were refused with a reason."""
    *refused, chosen = report
    assert chosen.ok
    for outcome in refused:
        assert not outcome.ok
        assert outcome.reason.strip(), f"{outcome.backend} refused without a reason"


def test_auto_encoder_report_lists_probes_in_table_order() -> None:
    encoder = open_encoder(width=320, height=180, fps=30, bitrate=300_000)
    names = [outcome.backend for outcome in encoder.probe_report]
    assert names == [b.name for b in ENCODER_BACKENDS][: len(names)]
    _check_report_shape(encoder.probe_report)
    assert encoder.backend == names[-1]


@needs_gpu_less_machine
def test_auto_encoder_falls_back_to_software(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="reference.codecs"):
        encoder = open_encoder(width=640, height=360, fps=30, bitrate=500_000)
    assert (encoder.backend, encoder.codec_name) == (SOFTWARE, "libx264")
    assert [(o.backend, o.ok) for o in encoder.probe_report] == [
        *((name, False) for name in HARDWARE_ENCODERS),
        (SOFTWARE, True),
    ]
    _check_report_shape(encoder.probe_report)
    log = caplog.text
    assert "encoder backend 'software' chosen (auto)" in log
    for outcome in encoder.probe_report[:-1]:
        assert f"encoder backend {outcome.backend!r} refused: {outcome.reason}" in log


@needs_gpu_less_machine
def test_auto_decoder_falls_back_to_software(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="reference.codecs"):
        decoder = open_decoder()
    assert (decoder.backend, decoder.codec_name) == (SOFTWARE, "h264")
    assert [(o.backend, o.ok) for o in decoder.probe_report] == [
        *((name, False) for name in HARDWARE_DECODERS),
        (SOFTWARE, True),
    ]
    _check_report_shape(decoder.probe_report)
    assert "decoder backend 'software' chosen (auto)" in caplog.text


@needs_gpu_less_machine
def test_nvidia_refusals_carry_ffmpeg_reason() -> None:
    """The log line FFmpeg wrote, not just PyAV's errno text, reaches the report."""
    encoders = {o.backend: o for o in probe_encoders()}
    decoders = {o.backend: o for o in probe_decoders()}
    assert "libcuda" in encoders["nvenc"].reason
    assert "cuda" in decoders["nvdec"].reason.lower()
    assert "nvcuvid" in decoders["cuvid"].reason


def test_probe_functions_cover_every_backend() -> None:
    assert [o.backend for o in probe_encoders()] == [b.name for b in ENCODER_BACKENDS]
    assert [o.backend for o in probe_decoders()] == [b.name for b in DECODER_BACKENDS]
    software = [o for o in (*probe_encoders(), *probe_decoders()) if o.backend == SOFTWARE]
    assert all(o.ok for o in software)


@pytest.mark.parametrize("name", HARDWARE_ENCODERS)
def test_named_unavailable_encoder_raises(name: str) -> None:
    if {o.backend: o.ok for o in probe_encoders()}[name]:
        pytest.skip(f"{name} works on this machine")
    with pytest.raises(BackendUnavailable) as caught:
        open_encoder(name, width=320, height=180, fps=30, bitrate=300_000)
    assert caught.value.backend == name
    assert caught.value.reason
    assert str(caught.value).startswith(f"{name}: ")


@pytest.mark.parametrize("name", HARDWARE_DECODERS)
def test_named_unavailable_decoder_raises(name: str) -> None:
    if {o.backend: o.ok for o in probe_decoders()}[name]:
        pytest.skip(f"{name} works on this machine")
    with pytest.raises(BackendUnavailable) as caught:
        open_decoder(name)
    assert caught.value.backend == name
    assert caught.value.reason


def test_named_software_backends_open() -> None:
    assert open_encoder(SOFTWARE, width=320, height=180, fps=30, bitrate=300_000).backend == (
        SOFTWARE
    )
    decoder = open_decoder(SOFTWARE)
    assert decoder.backend == SOFTWARE
    assert decoder.probe_report == (ProbeOutcome(SOFTWARE, True, decoder.probe_report[0].reason),)


def test_unknown_backend_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown encoder backend 'quicksync'"):
        open_encoder("quicksync", width=320, height=180, fps=30, bitrate=300_000)
    with pytest.raises(ValueError, match="unknown decoder backend 'nvenc'"):
        open_decoder("nvenc")
