"""An encoder that codes one loop of pictures once and then plays it back, for load tests.

At 1280x720 and 30 fps, libx264 takes most of a core on a small host and 25 to 40 ms a
picture, so a benchmark of how many Viewers something serves (benchmarks/fleet_capacity.py)
would measure the encoder first. `ReplayEncoder` codes one GOP with a real encoder when
it is opened and from then on returns its units in turn, restamped: the bytes on the
wire are real H.264 of the configured size and bitrate, their cost to send is the
same, and coding them costs nothing. A requested keyframe starts the loop again at its
IDR picture, so a Viewer that joins or asks still gets one at once.

The pictures repeat every loop (the marker in them counts 0..GOP-1 again), so it is a
source for header-only Viewers; a decoding Viewer that audits the markers sees the
same pictures again.
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from .encoder import EncodedUnit, EncoderSettings, VideoEncoder
from .errors import EncoderFailure
from .probe import ProbeOutcome

REPLAY_PREFIX = "replay:"  # backend name: replay:<the backend that coded the loop>


class ReplayEncoder:
    """A `VideoEncoder` that returns one coded GOP in a loop (see the module's text)."""

    def __init__(self, coder: VideoEncoder, pictures: Iterator[av.VideoFrame]) -> None:
        """Code one GOP of `pictures` with `coder` (closed afterwards) and keep its units."""
        settings = coder.settings
        try:
            units: list[EncodedUnit] = []
            for _ in range(settings.gop):
                units.extend(coder.encode(next(pictures), force_keyframe=not units))
            units.extend(coder.flush())
        finally:
            coder.close()
        if not units or not units[0].keyframe:
            raise EncoderFailure(coder.backend, "the replay loop does not start with a keyframe")
        self._units = units
        self._backend = REPLAY_PREFIX + coder.backend
        self._codec_name = coder.codec_name
        self._settings = settings
        self._probe_report = coder.probe_report
        self._next = 0
        self._pts = 0
        self._open = True

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def codec_name(self) -> str:
        return self._codec_name

    @property
    def settings(self) -> EncoderSettings:
        return self._settings

    @property
    def probe_report(self) -> tuple[ProbeOutcome, ...]:
        return self._probe_report

    @property
    def loop_length(self) -> int:
        return len(self._units)

    def encode(self, picture: av.VideoFrame, *, force_keyframe: bool = False) -> list[EncodedUnit]:
        """The loop's next unit (its first, the IDR, when a keyframe is asked for);
        `picture` only paces the loop."""
        if not self._open:
            raise EncoderFailure(self._backend, "the encoder is closed")
        if force_keyframe:
            self._next = 0
        unit = self._units[self._next]
        self._next = (self._next + 1) % len(self._units)
        self._pts += 1
        return [EncodedUnit(data=unit.data, keyframe=unit.keyframe, pts=self._pts - 1,
                            csd=unit.csd)]

    def flush(self) -> list[EncodedUnit]:
        return []

    def close(self) -> None:
        self._open = False
