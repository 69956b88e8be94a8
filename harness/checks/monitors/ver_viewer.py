"""VER-4 (the Viewer infers nothing on version 2); VER-1..3 live in ver.py."""

from __future__ import annotations

from harness.checks.episodes import TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import Deferred, Links
from harness.checks.wire import WireFrame
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind


@monitor
class Ver4(Monitor):
    """VER-4: with version 2, STREAM_STATE is authoritative and the Viewer infers nothing.

    Read from the Viewer's telemetry against its own tap, on every `state` record
    entering STREAMING. On a connection where the Primary announced version 2
    (PROTO version 2 or a STREAM_STATE on the tap, delivered at or before the
    record) the entry must carry a `server_state`: an entry without one is
    inference from media. On a version-1 connection (AUTH_CHALLENGE with no PROTO
    before it) the entry must carry none: no STREAM_STATE was ever delivered, so a
    server state in the record is invented. Which server state a version-2 entry
    names is STATE-2's reading; when a version-1 Viewer may infer is LEGACY-1's.
    Without a Viewer tap the version is unknown and the rule is not judged. No
    window. Evidence: the entry and the connection's version.
    """

    requirement = "VER-4"
    checks = "STREAMING entry/entries with a known version"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = Links()
        self.deferred = Deferred(self)

    def on_control(self, frame: WireFrame) -> None:
        self.links.frame(frame)

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or not rec.is_state(ViewerState.STREAMING):
            return
        if episode.state is ViewerState.STREAMING:
            return
        link = self.links.of(rec.viewer, episode.start)
        if link is None or link.speaks_v2 is None:
            return
        self.check()
        said = rec.server_state
        if link.speaks_v2 and said is None:
            self.fail(rec.t, "entered STREAMING by inference (no server state) on version 2",
                      episode.where)
        elif not link.speaks_v2 and said is not None:
            self.fail(rec.t, f"entered STREAMING with server state {said.name} on version 1, "
                      "which has no STREAM_STATE", episode.where)
