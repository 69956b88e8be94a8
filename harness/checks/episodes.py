"""Viewers as their telemetry reports them, one episode per connection.

A Viewer's records are cut into episodes at each `state` record entering
SOCKET_CONNECTED (PROTOCOL.md 9.2). The tracker keeps, per Viewer, only its
current episode: the state, epoch and server state it last reported, whether it
holds a decoder. As for connections, a record is handed to the monitors first
and the episode updated afterwards, so `episode.state` is the state *before*
the record being judged.

Records are the Viewer's own words, in the Viewer's own order: within one Viewer
that order is kept whatever the timestamps say (see `order.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.trace import Record
from reference.protocol.causes import Cause, parse_cause
from reference.protocol.frames import FrameType
from reference.protocol.states import StreamState, ViewerState
from reference.protocol.telemetry import DecoderAction, FrameAction, RecordKind

# Enum members read on every record are bound once (an enum attribute is a descriptor call).
_STATE, _FRAME, _DECODER = RecordKind.STATE, RecordKind.FRAME, RecordKind.DECODER
_DECODED = RecordKind.DECODED
_CSD_NAME = FrameType.CSD.name
_DECODE, _DROP = FrameAction.DECODE.value, FrameAction.DROP.value
_CREATE, _FLUSH, _RELEASE = DecoderAction.CREATE, DecoderAction.FLUSH, DecoderAction.RELEASE
_SOCKET_CONNECTED, _DISCONNECTED = ViewerState.SOCKET_CONNECTED, ViewerState.DISCONNECTED
_STATES = {s.value: s for s in ViewerState}
_KINDS = {k.value: k for k in RecordKind}
_DECODER_ACTIONS = {a.value: a for a in DecoderAction}
_SERVER_STATES = {int(s): s for s in StreamState}


def parse_state(value: object) -> ViewerState | None:
    return _STATES.get(value) if isinstance(value, str) else None


def parse_server_state(value: object) -> StreamState | None:
    return _SERVER_STATES.get(value) if isinstance(value, int) else None


def parse_kind(value: object) -> RecordKind | None:
    return _KINDS.get(value) if isinstance(value, str) else None


@dataclass(eq=False, slots=True)
class Episode:
    """One connection of one Viewer, from SOCKET_CONNECTED to the next one."""

    viewer: str
    index: int
    start: float
    state: ViewerState = ViewerState.SOCKET_CONNECTED
    epoch: int | None = None
    server_state: StreamState | None = None
    state_since: float = 0.0
    disconnected_at: float | None = None
    disconnect_cause: Cause | None = None
    decoder: bool = False  # holds a decoder now
    decoders_created: int = 0
    last_t: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.viewer}#{self.index}"


@dataclass(eq=False, slots=True)
class TelemetryRecord:
    """One telemetry record with its fields parsed against the protocol core, once."""

    record: Record
    viewer: str
    kind: RecordKind | None
    episode: Episode | None  # None before the Viewer's first SOCKET_CONNECTED
    t: float
    epoch: int | None
    action: str | None
    state: ViewerState | None = None  # state records: the new state
    previous: ViewerState | None = None
    cause: Cause | None = None
    decodes: bool = False  # a `frame` record: a media frame the Viewer passed to its decoder
    drops: bool = False  # a `frame` record: one it dropped
    decoder_action: DecoderAction | None = None  # a `decoder` record: create, flush, release
    # The Viewer decoded a frame other than CSD and keyframes (a `frame` decode
    # record, or a `decoded` record, without `key`): see `Monitor.reads_plain_media`.
    plain_media: bool = False

    @property
    def server_state(self) -> StreamState | None:
        return parse_server_state(self.record.get("server_state"))

    def is_state(self, state: ViewerState) -> bool:
        return self.state is state and self.kind is _STATE



class EpisodeTracker:
    """Every Viewer's current episode, updated one telemetry record at a time."""

    def __init__(self) -> None:
        self.current: dict[str, Episode] = {}
        self._counts: dict[str, int] = {}

    def parse(self, record: Record) -> tuple[TelemetryRecord, Episode | None]:
        """The parsed record, and the episode it ends (a new SOCKET_CONNECTED ends the last)."""
        viewer = str(record.get("viewer", ""))
        kind = parse_kind(record.get("event"))
        epoch, action = record.get("epoch"), record.get("action")
        parsed = TelemetryRecord(
            record,
            viewer,
            kind,
            self.current.get(viewer),
            float(record["t"]),
            epoch if isinstance(epoch, int) else None,
            action if isinstance(action, str) else None,
        )
        ended: Episode | None = None
        if kind is _STATE:
            parsed.state = parse_state(record.get("state"))
            parsed.previous = parse_state(record.get("previous"))
            parsed.cause = parse_cause(record.get("cause"))
            if parsed.state is _SOCKET_CONNECTED:
                ended = self.current.get(viewer)
                index = self._counts.get(viewer, 0)
                self._counts[viewer] = index + 1
                episode = Episode(viewer, index, parsed.t, state_since=parsed.t)
                self.current[viewer] = episode
                parsed.episode = episode
        elif kind is _FRAME:
            parsed.cause = parse_cause(record.get("cause"))
            parsed.decodes, parsed.drops = action == _DECODE, action == _DROP
            parsed.plain_media = (
                parsed.decodes and record.get("type") != _CSD_NAME and not record.get("key")
            )
        elif kind is _DECODED:
            parsed.plain_media = not record.get("key")
        elif kind is _DECODER and isinstance(action, str):
            parsed.decoder_action = _DECODER_ACTIONS.get(action)
        return parsed, ended

    def update(self, parsed: TelemetryRecord) -> None:
        """What the record established, once every monitor has judged it."""
        episode = parsed.episode
        if episode is None:
            return
        episode.last_t = parsed.t
        record = parsed.record
        if parsed.kind is _STATE and parsed.state is not None:
            episode.state, episode.state_since = parsed.state, parsed.t
            if "epoch" in record:
                episode.epoch = parsed.epoch if parsed.epoch is not None else episode.epoch
            if "server_state" in record:
                episode.server_state = parsed.server_state
            if parsed.state is _DISCONNECTED:
                episode.disconnected_at = parsed.t
                episode.disconnect_cause = parsed.cause
        action = parsed.decoder_action
        if action is _CREATE:
            episode.decoder = True
            episode.decoders_created += 1
            episode.epoch = parsed.epoch if parsed.epoch is not None else episode.epoch
        elif action is _FLUSH:
            episode.epoch = parsed.epoch if parsed.epoch is not None else episode.epoch
        elif action is _RELEASE:
            episode.decoder = False

    def forget(self, viewer: str) -> None:
        """A retired Viewer (`Engine.retire`): its episode was ended, its name is not reused."""
        self.current.pop(viewer, None)
        self._counts.pop(viewer, None)

    def remaining(self) -> list[Episode]:
        return list(self.current.values())
