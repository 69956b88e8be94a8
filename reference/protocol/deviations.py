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
    # Viewer side
    NO_EPOCH_DROP = "no_epoch_drop"
    NO_KEYFRAME_RETRY = "no_keyframe_retry"
    SELF_DECLARED_STREAMING = "self_declared_streaming"
    EVENTS_AS_STATE = "events_as_state"
    STALE_CONTROL_APPLIED = "stale_control_applied"
    LEAK_ON_RECONNECT = "leak_on_reconnect"


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
    # Breaks no wire rule: a soak's drift limit on the Viewers' memory catches it.
    Deviation.LEAK_ON_RECONNECT: (),
}

# Deviations no requirement monitor can see, only a soak's drift limits (harness/soak/).
DRIFT_DEVIATIONS = frozenset({Deviation.LEAK_ON_RECONNECT})

PRIMARY_DEVIATIONS = frozenset(
    {
        Deviation.NO_SNAPSHOT,
        Deviation.ACTIVE_BEFORE_KEYFRAME,
        Deviation.IGNORE_KEYFRAME_REQUEST,
        Deviation.MEDIA_BEFORE_ACCEPT,
    }
)
VIEWER_DEVIATIONS = frozenset(Deviation) - PRIMARY_DEVIATIONS


def parse_deviations(names: Iterable[str]) -> frozenset[Deviation]:
    """Switch names as a command line or scenario file gives them; ValueError names a bad one."""
    return frozenset(Deviation(name) for name in names)
