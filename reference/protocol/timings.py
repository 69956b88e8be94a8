"""Default timings of PROTOCOL.md ("Default timings"); every one is configurable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timings:
    auth_timeout: float = 5.0  # AUTH-3
    heartbeat_interval: float = 2.0  # HB-1
    heartbeat_timeout: float = 6.0  # HB-2
    stall_timeout: float = 2.0  # WD-1: inside the 1.5-2.5 s window
    keyframe_retry_interval: float = 1.0  # WD-2
    keyframe_retries: int = 5  # WD-2
    keyframe_answer: float = 1.0  # KEY-2, KEY-3
    legacy_fallback: float = 3.0  # LEGACY-1
    reconnect_initial: float = 0.25  # RECON-1
    reconnect_max: float = 5.0  # RECON-1
    frame_timeout: float = 10.0  # FRAME-2 (no hang): first byte of a frame -> its last
    accept_timeout: float = 5.0  # Viewer: AUTH_OK -> STREAM_ACCEPTED or _REJECTED (7.7)

    # Tolerated window for WD-1 stall detection, used by the checkers.
    stall_window: tuple[float, float] = (1.5, 2.5)

    def scaled(self, factor: float) -> Timings:
        """All durations multiplied by `factor` (fast scenarios), retry count kept."""
        return Timings(
            auth_timeout=self.auth_timeout * factor,
            heartbeat_interval=self.heartbeat_interval * factor,
            heartbeat_timeout=self.heartbeat_timeout * factor,
            stall_timeout=self.stall_timeout * factor,
            keyframe_retry_interval=self.keyframe_retry_interval * factor,
            keyframe_retries=self.keyframe_retries,
            keyframe_answer=self.keyframe_answer * factor,
            legacy_fallback=self.legacy_fallback * factor,
            reconnect_initial=self.reconnect_initial * factor,
            reconnect_max=self.reconnect_max * factor,
            frame_timeout=self.frame_timeout * factor,
            accept_timeout=self.accept_timeout * factor,
            stall_window=(self.stall_window[0] * factor, self.stall_window[1] * factor),
        )


DEFAULT_TIMINGS = Timings()
