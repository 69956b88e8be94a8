"""EPOCH: epochs on the wire (the Primary) and epochs adopted and decoded (the Viewer)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial

from harness.checks.episodes import TelemetryRecord
from harness.checks.members import (
    DECODER_FLUSH,
    RENDERED_KIND,
    SOCKET_CONNECTED,
    STATE_KIND,
)
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import ANY_VIEWER, Conn, WireFrame
from harness.trace import Record
from reference.protocol.causes import Cause
from reference.protocol.messages import StreamAccepted, StreamStateMessage
from reference.protocol.states import StreamState
from reference.protocol.telemetry import RecordKind

# Scenario actions that must produce a new epoch (EPOCH-1).
EPOCH_ACTIONS = frozenset({"reconfigure", "restart_encoder"})


@dataclass(slots=True)
class _PendingAction:
    t: float
    action: str
    epoch_before: int | None
    seen: bool = False


@monitor
class Epoch1(Monitor):
    """EPOCH-1: every reconfiguration increments the epoch.

    Read on every Primary-side connection, in wire order: a STREAM_STATE never
    carries a smaller epoch than the one before it on the connection, and one that
    enters RECONFIGURING (from any other state) carries a larger one. Each
    delivered `reconfigure` or `restart_encoder` action of the scenario must be
    followed within `window` seconds (default 2 s: a reconfiguration at the
    reference rates takes well under one) by a STREAM_STATE on any Primary-side
    connection whose epoch is larger than every epoch last announced on the
    Primary-side connections live at the action (a restarted Primary starts its
    epochs again with new connections, so epochs of connections that ended do not
    count); an action while no connection is live is not judged. Evidence: the
    offending STREAM_STATE, or the action with no new epoch.
    """

    requirement = "EPOCH-1"
    checks = "reconfiguration(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.within = float(self.ctx.param("window", 2.0))
        self.announced: dict[Conn, int] = {}  # live Primary-side connection -> last epoch
        self.pending: list[_PendingAction] = []
        self.primary_seen = False

    def on_control(self, frame: WireFrame) -> None:
        message = frame.message
        if not (frame.from_primary and frame.conn.judges_primary):
            return
        self.primary_seen = True
        if not isinstance(message, StreamStateMessage):
            return
        previous = frame.conn.stream
        if previous is not None:
            if message.epoch < previous[1]:
                self.fail(
                    frame.t, f"epoch went down {previous[1]} -> {message.epoch}", frame.where()
                )
            entering = message.state is StreamState.RECONFIGURING
            if entering and previous[0] is not StreamState.RECONFIGURING:
                self.check()
                if message.epoch <= previous[1]:
                    self.fail(frame.t, f"RECONFIGURING kept epoch {message.epoch}", frame.where())
        for action in self.pending:
            newer = action.epoch_before is None or message.epoch > action.epoch_before
            if newer and not action.seen and self.in_time(action.t, self.within, frame.t):
                action.seen = True
        self.announced[frame.conn] = message.epoch

    def on_end(self, conn: Conn) -> None:
        self.announced.pop(conn, None)

    def on_action(self, record: Record) -> None:
        name = str(record.get("action"))
        if name not in EPOCH_ACTIONS or not self.announced:
            return
        self.check()
        action = _PendingAction(float(record["t"]), name, max(self.announced.values()))
        self.pending.append(action)
        self.ctx.deadline(action.t, self.within, partial(self._settle, action))

    def _settle(self, action: _PendingAction, now: float) -> None:
        self.pending.remove(action)
        if not action.seen and self.primary_seen:
            self.fail(action.t, f"{action.action} produced no new epoch within "
                      f"{now - action.t:.2f} s{self.waited(action.t, now)}")


@monitor
class Epoch2(Monitor):
    """EPOCH-2: every CSD, VIDEO and AUDIO frame carries its epoch.

    Read on every version-2 Primary-side connection, in wire order: a media frame
    from the Primary carries the epoch of the last epoch announcement before it on
    the connection, a STREAM_STATE or the STREAM_ACCEPTED (a Viewer accepted
    mid-reconfiguration is told the new epoch in its accept). Order is the tap's: a
    frame read in the same segment as a later STREAM_STATE still counts as before
    it. Frames before any announcement are judged by NEG-1, not here. Evidence: the
    frame's type, sequence and epoch beside the announced one.
    """

    requirement = "EPOCH-2"
    checks = "media frame(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.announced: dict[Conn, int] = {}

    def on_control(self, frame: WireFrame) -> None:
        message = frame.message
        announces = isinstance(message, StreamStateMessage | StreamAccepted)
        if announces and frame.from_primary and frame.conn.judges_primary:
            epoch = message.epoch  # type: ignore[union-attr]
            if epoch is not None:
                self.announced[frame.conn] = epoch

    def on_media(self, frame: WireFrame) -> None:
        conn = frame.conn
        if not conn.judges_primary:
            self.skip_plain_media(frame)  # the Primary's media is judged on its own tap
            return
        if not (frame.from_primary and conn.speaks_v2):
            return
        self.check()
        announced = self.announced.get(conn)
        if announced is not None and frame.epoch != announced:
            self.fail(
                frame.t,
                f"{frame.label} seq {frame.record.get('seq')} tagged epoch {frame.epoch}, "
                f"announced epoch {announced}",
                frame.where(),
            )

    def on_end(self, conn: Conn) -> None:
        self.announced.pop(conn, None)


@monitor
class Epoch3(Monitor):
    """EPOCH-3: a frame whose epoch is not the current one is never decoded or rendered.

    Read from the Viewer's telemetry, in its own order: every `frame` record with
    action `decode` has the epoch the Viewer held at that moment (from its last
    `state` record or decoder create/flush), and every `rendered` record shows, in
    its audited pixels, the epoch equal to its `stream_epoch` and to the current
    epoch. A rendered record whose audit could not read the picture is not judged
    (the render audit counts those). Drops with cause `stale_epoch` or
    `future_epoch` are counted as support. No timing window.
    """

    requirement = "EPOCH-3"
    checks = "decoded/rendered frame(s)"
    telemetry_kinds = frozenset({RecordKind.FRAME, RecordKind.RENDERED})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.dropped = 0

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None:
            return
        current = episode.epoch
        record = rec.record
        if rec.decodes:
            self.check()
            if rec.epoch != current:
                self.fail(
                    rec.t,
                    f"{record.get('type')} seq {record.get('seq')} of epoch {rec.epoch} "
                    f"decoded in epoch {current}",
                    rec.viewer,
                )
        elif rec.drops and rec.cause in (Cause.STALE_EPOCH, Cause.FUTURE_EPOCH):
            self.dropped += 1
        elif rec.kind is RENDERED_KIND:
            self.check()
            shown = record.get("epoch")
            if record.get("audited") is not False and shown is None:
                return  # unreadable picture: counted by the render audit, not here
            if shown != record.get("stream_epoch") or shown != current:
                self.fail(
                    rec.t,
                    f"rendered a picture of epoch {shown} (frame {record.get('frame')}) "
                    f"in epoch {current}",
                    rec.viewer,
                )

    def on_finish(self, end: float) -> None:
        if self.dropped:
            self.note(None, f"{self.dropped} other-epoch frame(s) dropped by the Viewer(s)")


@dataclass(slots=True)
class _Stale:
    t: float
    epoch: int
    text: str
    newest: int


@monitor
class Epoch4(Monitor):
    """EPOCH-4: control messages of an older epoch are ignored; no roll-back.

    Two readings. From telemetry: within one episode the epoch the Viewer adopts
    (in `state` records and decoder flushes) never goes down. Against the Viewer's
    own tap: a STREAM_STATE or STREAM_ACCEPTED delivered with an epoch older than
    the newest one delivered before it on that connection is stale, and counted as
    a case checked. A roll-back is the failure; when a stale message of exactly the
    epoch rolled back to was delivered within the tolerance before it (the tap sees
    a message before the Viewer can act on it, on the same host clock), it is named
    in the evidence. A Viewer that never reported the newer epoch cannot be told
    apart from one acting on the older message, so that is not judged.
    """

    requirement = "EPOCH-4"
    checks = "epoch adoption(s) and stale control message(s)"
    telemetry_kinds = frozenset({RecordKind.STATE, RecordKind.DECODER})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.top: dict[str, int] = {}  # viewer -> highest epoch adopted in this episode
        self.newest: dict[Conn, int] = {}
        self.stale: dict[str, deque[_Stale]] = {}

    def on_control(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not (frame.from_primary and conn.judges_viewer):
            return
        if not isinstance(message, StreamStateMessage | StreamAccepted) or message.epoch is None:
            return
        newest = self.newest.get(conn)
        if newest is not None and message.epoch < newest:
            self.check()
            key = conn.viewer or ANY_VIEWER
            queue = self.stale.setdefault(key, deque(maxlen=64))
            queue.append(_Stale(frame.t, message.epoch, frame.text, newest))
        self.newest[conn] = message.epoch if newest is None else max(newest, message.epoch)

    def on_end(self, conn: Conn) -> None:
        self.newest.pop(conn, None)

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        adopting = rec.kind is STATE_KIND or rec.decoder_action is DECODER_FLUSH
        if not adopting:
            return
        if rec.is_state(SOCKET_CONNECTED):
            self.top.pop(rec.viewer, None)
        epoch = rec.epoch
        if epoch is None:
            return
        self.check()
        top = self.top.get(rec.viewer)
        self.top[rec.viewer] = epoch if top is None else max(top, epoch)
        if top is None or epoch >= top:
            return
        queue = self.stale.get(rec.viewer) or self.stale.get(ANY_VIEWER) or deque()
        while queue and queue[0].t < rec.t - self.tolerance:
            queue.popleft()
        acted = next((s for s in queue if s.epoch == epoch and s.t <= rec.t), None)
        cause = f": acted on stale {acted.text} (newest {acted.newest})" if acted else ""
        self.fail(rec.t, f"rolled back to epoch {epoch} from {top}{cause}", rec.viewer)
