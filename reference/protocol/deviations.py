"""Deliberate rule violations, for proving that the checkers can fail.

A conformance tool that never sees a broken peer has never been tested. Each
switch makes the reference peers break exactly one rule; they are off unless
a test or scenario names them, and the requirement each breaks is data here so
that the tests can expect FAIL on exactly that ID (BREAKS), and on nothing else but
the IDs the same fault is also seen by where a scenario leads there (CONSEQUENCES).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from enum import Enum


class Deviation(str, Enum):
    # Primary side
    NO_SNAPSHOT = "no_snapshot"
    ACTIVE_BEFORE_KEYFRAME = "active_before_keyframe"
    IGNORE_KEYFRAME_REQUEST = "ignore_keyframe_request"
    MEDIA_BEFORE_ACCEPT = "media_before_accept"
    NO_PROTO = "no_proto"
    REUSE_NONCE = "reuse_nonce"
    ACCEPT_WRONG_ANSWER = "accept_wrong_answer"
    NO_AUTH_TIMEOUT = "no_auth_timeout"
    STALE_SNAPSHOT = "stale_snapshot"
    ACCEPT_WITHOUT_EPOCH = "accept_without_epoch"
    SILENT_REJECTION = "silent_rejection"
    ERROR_ON_UNKNOWN = "error_on_unknown"
    STATE_TO_VERSION_1 = "state_to_version_1"
    SLOW_HEARTBEAT = "slow_heartbeat"
    NO_JOIN_KEYFRAME = "no_join_keyframe"
    STALE_MEDIA_EPOCH = "stale_media_epoch"
    RESUME_AS_EVENT = "resume_as_event"  # the resume is told only as STREAM_EVENT|RESUMED
    DELTA_BEFORE_KEYFRAME = "delta_before_keyframe"  # non-keyframes to a keyframe-less joiner
    NO_STREAM_EVENTS = "no_stream_events"  # state changes with no STREAM_EVENT after them
    RARE_STALE_EPOCH = "rare_stale_epoch"  # STALE_MEDIA_EPOCH, once, for 1 reconfiguration in 20
    SAME_EPOCH_ON_RECONFIGURE = "same_epoch_on_reconfigure"  # a running stream's epoch stays
    STATE_NAMES = "state_names"  # STREAM_STATE with the state's name, not its numeric code
    ANSWERS_BEFORE_AUTH = "answers_before_auth"  # STREAM_REJECTED to SET_STREAM after challenge
    NONCE_NOT_CONSUMED = "nonce_not_consumed"  # an answer to any nonce still held is taken
    # Viewer side
    NO_EPOCH_DROP = "no_epoch_drop"
    NO_KEYFRAME_RETRY = "no_keyframe_retry"
    SELF_DECLARED_STREAMING = "self_declared_streaming"
    EVENTS_AS_STATE = "events_as_state"
    STALE_CONTROL_APPLIED = "stale_control_applied"
    HELLO_WITHOUT_ROLE = "hello_without_role"
    EARLY_KEYFRAME_REQUEST = "early_keyframe_request"
    VIEWER_ERROR_ON_UNKNOWN = "viewer_error_on_unknown"
    SILENT_CLOSE_ON_BAD_INPUT = "silent_close_on_bad_input"
    FLAGGED_CAPS = "flagged_caps"
    ACCEPT_ROLLS_BACK = "accept_rolls_back"
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
    STAYS_RECOVERING = "stays_recovering"  # a keyframe decoded in RECOVERING does not end it
    STREAMS_BEFORE_SNAPSHOT = "streams_before_snapshot"  # infers ACTIVE until a STREAM_STATE
    LEAK_ON_RECONNECT = "leak_on_reconnect"


BREAKS: dict[Deviation, tuple[str, ...]] = {
    Deviation.NO_SNAPSHOT: ("SNAP-1",),
    Deviation.ACTIVE_BEFORE_KEYFRAME: ("KEY-1",),
    Deviation.IGNORE_KEYFRAME_REQUEST: ("KEY-2",),
    Deviation.MEDIA_BEFORE_ACCEPT: ("NEG-1",),
    Deviation.NO_PROTO: ("VER-2",),
    Deviation.REUSE_NONCE: ("AUTH-1",),
    # Accepting a wrong answer lets in a peer it must refuse (AUTH-1 judges nonces only).
    Deviation.ACCEPT_WRONG_ANSWER: ("AUTH-2",),
    Deviation.NO_AUTH_TIMEOUT: ("AUTH-3",),
    Deviation.STALE_SNAPSHOT: ("SNAP-2",),
    Deviation.ACCEPT_WITHOUT_EPOCH: ("NEG-2",),
    Deviation.SILENT_REJECTION: ("NEG-3",),
    Deviation.ERROR_ON_UNKNOWN: ("VER-3",),
    Deviation.STATE_TO_VERSION_1: ("LEGACY-2",),
    Deviation.NO_EPOCH_DROP: ("EPOCH-3",),
    Deviation.NO_KEYFRAME_RETRY: ("WD-2",),
    # Declaring STREAMING without ACTIVE also keeps it while a condition is missing.
    Deviation.SELF_DECLARED_STREAMING: ("STATE-2", "STATE-3"),
    Deviation.EVENTS_AS_STATE: ("EVT-1",),
    Deviation.STALE_CONTROL_APPLIED: ("EPOCH-4",),
    Deviation.HELLO_WITHOUT_ROLE: ("VER-1",),
    Deviation.EARLY_KEYFRAME_REQUEST: ("NEG-4",),
    Deviation.VIEWER_ERROR_ON_UNKNOWN: ("VER-3",),
    Deviation.SILENT_CLOSE_ON_BAD_INPUT: ("FRAME-2",),
    Deviation.FLAGGED_CAPS: ("FRAME-1",),
    Deviation.ACCEPT_ROLLS_BACK: ("NEG-2",),
    Deviation.SLOW_HEARTBEAT: ("HB-1",),
    Deviation.NO_JOIN_KEYFRAME: ("KEY-3",),
    Deviation.STALE_MEDIA_EPOCH: ("EPOCH-2",),
    Deviation.RESUME_AS_EVENT: ("STATE-8",),
    Deviation.DELTA_BEFORE_KEYFRAME: ("KEY-4",),
    Deviation.NO_STREAM_EVENTS: ("EVT-2",),
    Deviation.RARE_STALE_EPOCH: ("EPOCH-2",),
    Deviation.SAME_EPOCH_ON_RECONFIGURE: ("EPOCH-1",),
    Deviation.STATE_NAMES: ("STATE-1",),
    Deviation.ANSWERS_BEFORE_AUTH: ("AUTH-4",),
    Deviation.NONCE_NOT_CONSUMED: ("AUTH-5",),
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
    Deviation.STAYS_RECOVERING: ("WD-3",),
    Deviation.STREAMS_BEFORE_SNAPSHOT: ("SNAP-3",),
    # Breaks no wire rule: a soak's drift limit on the Viewers' memory catches it.
    Deviation.LEAK_ON_RECONNECT: (),
}

# IDs a deviation may also FAIL, in some scenarios, as a consequence of the behaviour that
# breaks its BREAKS IDs: not a second fault, the same one seen by another rule. A
# certification of the deviated peer is as expected when it FAILs every ID of BREAKS and
# nothing outside BREAKS and these (benchmarks/certify_deviations.py, tests/certify/).
CONSEQUENCES: dict[Deviation, tuple[str, ...]] = {
    # A replayed answer is a wrong one for the new nonce: let in, it is AUTH-5's violation
    # too (replayed-answer).
    Deviation.ACCEPT_WRONG_ANSWER: ("AUTH-5",),
    # Taking a PAUSED server for ACTIVE, its stall watchdog runs with no ACTIVE time (WD-1),
    # goes RECOVERING while the server says PAUSED (STATE-6), and requests keyframes and
    # disconnects when they run out, while paused (STATE-5). Seen in pause-resume.
    Deviation.SELF_DECLARED_STREAMING: ("STATE-5", "STATE-6", "WD-1"),
    # Ignoring STREAM_STATE it stays STREAMING through a RECONFIGURING (STATE-2, STATE-3;
    # legacy-viewer), and it infers against a version-1 Primary at once, not after the
    # fallback timeout (LEGACY-1; legacy-primary).
    Deviation.INFER_ON_V2: ("STATE-2", "STATE-3", "LEGACY-1"),
    # An answer before AUTH_OK is stream data before AUTH_OK (STREAM_REJECTED), which 5.1
    # step 8 forbids under AUTH-2 as well (wherever AUTH-2 is judged beside AUTH-4).
    Deviation.ANSWERS_BEFORE_AUTH: ("AUTH-2",),
    # Taking an answer to an earlier connection's nonce lets a replay in: a wrong answer for
    # the replaying connection's own nonce, so AUTH-2's violation too (replayed-answer).
    Deviation.NONCE_NOT_CONSUMED: ("AUTH-2",),
    # Streaming before any STREAM_STATE is streaming on no server state: inference on
    # version 2 (VER-4), where the snapshot comes after the keyframe (late-snapshot).
    Deviation.STREAMS_BEFORE_SNAPSHOT: ("VER-4",),
}

# Deviations no requirement monitor can see, only a soak's drift limits (harness/soak/).
DRIFT_DEVIATIONS = frozenset({Deviation.LEAK_ON_RECONNECT})

PRIMARY_DEVIATIONS = frozenset(
    {
        Deviation.NO_SNAPSHOT,
        Deviation.ACTIVE_BEFORE_KEYFRAME,
        Deviation.IGNORE_KEYFRAME_REQUEST,
        Deviation.MEDIA_BEFORE_ACCEPT,
        Deviation.NO_PROTO,
        Deviation.REUSE_NONCE,
        Deviation.ACCEPT_WRONG_ANSWER,
        Deviation.NO_AUTH_TIMEOUT,
        Deviation.STALE_SNAPSHOT,
        Deviation.ACCEPT_WITHOUT_EPOCH,
        Deviation.SILENT_REJECTION,
        Deviation.ERROR_ON_UNKNOWN,
        Deviation.STATE_TO_VERSION_1,
        Deviation.SLOW_HEARTBEAT,
        Deviation.NO_JOIN_KEYFRAME,
        Deviation.STALE_MEDIA_EPOCH,
        Deviation.RESUME_AS_EVENT,
        Deviation.DELTA_BEFORE_KEYFRAME,
        Deviation.NO_STREAM_EVENTS,
        Deviation.RARE_STALE_EPOCH,
        Deviation.SAME_EPOCH_ON_RECONFIGURE,
        Deviation.STATE_NAMES,
        Deviation.ANSWERS_BEFORE_AUTH,
        Deviation.NONCE_NOT_CONSUMED,
    }
)
VIEWER_DEVIATIONS = frozenset(Deviation) - PRIMARY_DEVIATIONS

# How often a rare switch strikes: the share of the occasions (e.g. reconfiguration targets)
# for which it breaks its rule. Rare enough that a short scenario almost never meets it,
# common enough that a soak with a few dozen reconfigurations does.
RARE_RATE = 1 / 20


def strikes(seed: int, occasion: str, rate: float = RARE_RATE) -> bool:
    """Whether a rare switch breaks its rule on this occasion, for a peer with this seed.

    A pure function of the seed and the occasion (no clock, no call count): the same
    seed strikes on the same occasions in a soak and in a scenario cut down from it,
    however many other steps either has, so a shrunk reproduction still fails.
    """
    return random.Random(f"lvs-rare:{seed}:{occasion}").random() < rate


def parse_deviations(names: Iterable[str]) -> frozenset[Deviation]:
    """Switch names as a command line or scenario file gives them; ValueError names a bad one."""
    return frozenset(Deviation(name) for name in names)
