"""SNAP-3 (the Viewer's side of the snapshot); SNAP-1/2 live in snap.py."""

from __future__ import annotations

from harness.checks.episodes import Episode, TelemetryRecord
from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.monitors.viewer_link import Deferred, Links
from harness.checks.wire import WireFrame
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind


@monitor
class Snap3(Monitor):
    """SNAP-3: after a (re)connect the Viewer does not enter STREAMING before the snapshot.

    Read from the Viewer's telemetry against its own tap, per episode: the
    episode's first `state` record entering STREAMING on a version-2 connection
    (PROTO version 2, or a STREAM_STATE, on the tap) must come at or after the
    time the tap delivered the connection's first STREAM_STATE (the tap stamps a
    frame before the Viewer can read it, so the snapshot's tap time is a lower
    bound; no window). Version-1 connections are LEGACY-1's; without a Viewer tap
    the rule is not judged (a record's `server_state` alone is VER-4's reading).
    That a Viewer which got the snapshot does reach STREAMING is EVT-1's reading.
    Evidence: the entry and the snapshot's time, or its absence.
    """

    requirement = "SNAP-3"
    checks = "(re)connection(s) reaching STREAMING"
    telemetry_kinds = frozenset({RecordKind.STATE})

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.links = Links()
        self.deferred = Deferred(self)
        self.judged: set[str] = set()  # viewers whose current episode was judged

    def on_control(self, frame: WireFrame) -> None:
        self.links.frame(frame)

    def on_episode_end(self, episode: Episode) -> None:
        self.judged.discard(episode.viewer)

    def on_finish(self, end: float) -> None:
        self.deferred.finish()

    def on_telemetry(self, rec: TelemetryRecord) -> None:
        episode = rec.episode
        if episode is None or not rec.is_state(ViewerState.STREAMING):
            return
        if rec.viewer in self.judged:
            return
        self.judged.add(rec.viewer)
        link = self.links.of(rec.viewer, episode.start)
        if link is None or link.speaks_v2 is False:
            return
        t = rec.t

        def rule() -> str | None:
            if link.snapshot_at is not None and link.snapshot_at <= t:
                return None
            if link.snapshot_at is None:
                return "entered STREAMING with no snapshot delivered"
            return f"entered STREAMING {link.snapshot_at - t:.3f} s before the snapshot arrived"

        self.deferred.judge(t, episode.where, rule)
