"""Deliberate rule violations, for proving that the checkers can fail.

A conformance tool that never sees a broken peer has never been tested. Each
switch makes the reference peers break exactly one rule; they are off unless
a test or scenario names them, and the requirement each breaks is data here so
that the tests can expect FAIL on exactly that ID.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Deviation(str, Enum):
    # Primary side
    NO_SNAPSHOT = "no_snapshot"
    ACTIVE_BEFORE_KEYFRAME = "active_before_keyframe"
    IGNORE_KEYFRAME_REQUEST = "ignore_keyframe_request"
    MEDIA_BEFORE_ACCEPT = "media_before_accept"
    SLOW_HEARTBEAT = "slow_heartbeat"
    STALE_MEDIA_EPOCH = "stale_media_epoch"
    # Viewer side
    NO_EPOCH_DROP = "no_epoch_drop"
    NO_KEYFRAME_RETRY = "no_keyframe_retry"
    SELF_DECLARED_STREAMING = "self_declared_streaming"
    EVENTS_AS_STATE = "events_as_state"
    STALE_CONTROL_APPLIED = "stale_control_applied"
    NO_LIVENESS_TIMEOUT = "no_liveness_timeout"
    LATE_STALL_WATCHDOG = "late_stall_watchdog"
    RECONNECT_TOO_SOON = "reconnect_too_soon"
    IGNORES_SNAPSHOT = "ignores_snapshot"  # waits for an event instead of the snapshot
    FLAP_ON_KEYFRAME = "flap_on_keyframe"  # leaves and re-enters STREAMING on a keyframe
    WATCHDOG_WHILE_PAUSED = "watchdog_while_paused"  # stall watchdog runs under PAUSED
    NO_DECODER_FLUSH = "no_decoder_flush"  # a new epoch is decoded without a flush
    KEEPS_DECODER = "keeps_decoder"  # no decoder release on DISCONNECTED
    RECONNECT_ON_PAUSE = "reconnect_on_pause"  # PAUSED taken for the end: reconnect
    INFER_ON_V2 = "infer_on_v2"  # ignores STREAM_STATE, infers STREAMING from media
    NO_LEGACY_INFERENCE = "no_legacy_inference"  # never infers against a version-1 Primary


BREAKS: dict[Deviation, tuple[str, ...]] = {
    Deviation.NO_SNAPSHOT: ("SNAP-1",),
    Deviation.ACTIVE_BEFORE_KEYFRAME: ("KEY-1",),
    Deviation.IGNORE_KEYFRAME_REQUEST: ("KEY-2",),
    Deviation.MEDIA_BEFORE_ACCEPT: ("NEG-1",),
    Deviation.NO_EPOCH_DROP: ("EPOCH-3",),
    Deviation.NO_KEYFRAME_RETRY: ("WD-2",),
    # Declaring STREAMING without ACTIVE also keeps it while a condition is missing.
    Deviation.SELF_DECLARED_STREAMING: ("STATE-2", "STATE-3"),
    Deviation.EVENTS_AS_STATE: ("EVT-1",),
    Deviation.STALE_CONTROL_APPLIED: ("EPOCH-4",),
    Deviation.SLOW_HEARTBEAT: ("HB-1",),
    Deviation.STALE_MEDIA_EPOCH: ("EPOCH-2",),
    Deviation.NO_LIVENESS_TIMEOUT: ("HB-2",),
    Deviation.LATE_STALL_WATCHDOG: ("WD-1",),
    Deviation.RECONNECT_TOO_SOON: ("RECON-1",),
    Deviation.IGNORES_SNAPSHOT: ("EVT-1",),
    Deviation.FLAP_ON_KEYFRAME: ("STATE-6",),
    # A watchdog under PAUSED also sends the keyframe requests STATE-5 forbids, and
    # declares a stall after time WD-1 does not count (its timer is suspended then).
    Deviation.WATCHDOG_WHILE_PAUSED: ("STATE-5", "STATE-6", "WD-1"),
    Deviation.NO_DECODER_FLUSH: ("STATE-4",),
    Deviation.KEEPS_DECODER: ("STATE-7",),
    Deviation.RECONNECT_ON_PAUSE: ("STATE-5",),
    Deviation.INFER_ON_V2: ("VER-4",),
    Deviation.NO_LEGACY_INFERENCE: ("LEGACY-1",),
}

PRIMARY_DEVIATIONS = frozenset(
    {
        Deviation.NO_SNAPSHOT,
        Deviation.ACTIVE_BEFORE_KEYFRAME,
        Deviation.IGNORE_KEYFRAME_REQUEST,
        Deviation.MEDIA_BEFORE_ACCEPT,
        Deviation.SLOW_HEARTBEAT,
        Deviation.STALE_MEDIA_EPOCH,
    }
)
VIEWER_DEVIATIONS = frozenset(Deviation) - PRIMARY_DEVIATIONS


def parse_deviations(names: Iterable[str]) -> frozenset[Deviation]:
    """Switch names as a command line or scenario file gives them; ValueError names a bad one."""
    return frozenset(Deviation(name) for name in names)
