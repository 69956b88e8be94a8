"""LEGACY-2: a version-2 Primary serves a version-1 Viewer the old way."""

from __future__ import annotations

from harness.checks.monitor import Monitor, MonitorContext, monitor
from harness.checks.wire import Conn, WireFrame
from reference.protocol.messages import (
    Hello,
    Proto,
    SetStream,
    StreamAccepted,
    StreamEventMessage,
    StreamRejected,
    StreamStateMessage,
)

VERSION_2_ONLY = (Proto, StreamStateMessage, StreamEventMessage)


@monitor
class Legacy2(Monitor):
    """LEGACY-2: no PROTO, STREAM_STATE or STREAM_EVENT to a version-1 Viewer; it is served.

    Read on every Primary-side connection whose HELLO asked for version 1: the
    Primary sends none of PROTO, STREAM_STATE and STREAM_EVENT on it, and a
    SET_STREAM sent after AUTH_OK is answered with STREAM_ACCEPTED (or
    STREAM_REJECTED) before the connection ends, if it lasted `serve_within`
    (default 2 s) after the request. Each version-1 connection is one item checked.
    Evidence: the version-2-only message; the request never answered.
    """

    requirement = "LEGACY-2"
    checks = "version-1 Viewer connection(s)"

    def __init__(self, ctx: MonitorContext) -> None:
        super().__init__(ctx)
        self.serve_within = float(self.ctx.param("serve_within", 2.0))
        self.requested: dict[Conn, float] = {}  # SET_STREAM time, until it is answered
        self.served: set[Conn] = set()

    def on_frame(self, frame: WireFrame) -> None:
        conn, message = frame.conn, frame.message
        if not conn.judges_primary:
            return
        if frame.from_viewer:
            if isinstance(message, Hello) and conn.hello is None and message.version == 1:
                self.check()
            elif isinstance(message, SetStream) and conn.viewer_version == 1 and (
                conn.authenticated_at is not None and conn not in self.served
            ):
                self.requested.setdefault(conn, frame.t)
            return
        if conn.viewer_version != 1:
            return
        if isinstance(message, VERSION_2_ONLY):
            self.fail(frame.t, f"{frame.label} sent to a version-1 Viewer", frame.where())
        elif isinstance(message, (StreamAccepted, StreamRejected)):
            self.served.add(conn)
            self.requested.pop(conn, None)

    def on_end(self, conn: Conn) -> None:
        self.served.discard(conn)
        asked = self.requested.pop(conn, None)
        end = conn.end
        if asked is not None and end is not None and end - asked > self.serve_within:
            self.fail(asked, "version-1 Viewer's SET_STREAM never served", conn.where)
