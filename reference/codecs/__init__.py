"""H.264 backends for the reference peers, hardware first, libx264/h264 as fallback.

`open_encoder` (Primary) and `open_decoder` (Viewer) probe the backends in
the order of `ENCODER_BACKENDS` / `DECODER_BACKENDS` and log on the
`reference.codecs` logger why each one was refused. See README.md.
"""

from .annexb import AnnexBError, NalType, join_nal_units, split_nal_units
from .backends import (
    AUTO,
    DECODER_BACKENDS,
    ENCODER_BACKENDS,
    SOFTWARE,
    DecoderBackend,
    EncoderBackend,
)
from .decoder import (
    DecodedPicture,
    FFmpegVideoDecoder,
    VideoDecoder,
    open_decoder,
    probe_decoders,
)
from .encoder import (
    EncodedUnit,
    EncoderSettings,
    FFmpegVideoEncoder,
    VideoEncoder,
    open_encoder,
    probe_encoders,
)
from .errors import (
    BackendUnavailable,
    CodecError,
    DecodeError,
    EncoderFailure,
    KeyframeRequired,
)
from .probe import ProbeOutcome

__all__ = [
    "AUTO",
    "DECODER_BACKENDS",
    "ENCODER_BACKENDS",
    "SOFTWARE",
    "AnnexBError",
    "BackendUnavailable",
    "CodecError",
    "DecodeError",
    "DecodedPicture",
    "DecoderBackend",
    "EncodedUnit",
    "EncoderBackend",
    "EncoderFailure",
    "EncoderSettings",
    "FFmpegVideoDecoder",
    "FFmpegVideoEncoder",
    "KeyframeRequired",
    "NalType",
    "ProbeOutcome",
    "VideoDecoder",
    "VideoEncoder",
    "join_nal_units",
    "open_decoder",
    "open_encoder",
    "probe_decoders",
    "probe_encoders",
    "split_nal_units",
]
