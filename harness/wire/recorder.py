"""The wire tap: a transparent relay that writes every frame it sees to the trace.

A scenario puts one tap next to each peer (Viewer -> tap "viewer_side" ->
fault injectors -> tap "primary_side" -> Primary), so the trace holds what
each peer really sent and really received. Bytes are forwarded unchanged and
first; decoding is only for the record. A direction that stops decoding is
recorded once as `wire_error` and still forwarded: the tap never hides what a
peer sent. With a `PcapWriter` the same byte streams go to a capture, with
the real client and upstream addresses, on an interface named after the tap
and stamped with the trace's clock.
"""

from __future__ import annotations

from typing import Literal

from harness.trace import P2V, V2P, TraceWriter, frame_record
from harness.wire.pcap import PcapWriter
from harness.wire.relay import Endpoint, Relay, RelayConnection, RelayThread
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import HEADER_SIZE, FrameDecoder

PcapDirection = Literal["c2s", "s2c"]
_PCAP_DIRECTION: dict[str, PcapDirection] = {V2P: "c2s", P2V: "s2c"}


class WireTap(Relay):
    def __init__(
        self,
        name: str,
        upstream_host: str,
        upstream_port: int,
        *,
        trace: TraceWriter,
        pcap: PcapWriter | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        super().__init__(
            name,
            upstream_host,
            upstream_port,
            listen_host=listen_host,
            listen_port=listen_port,
            trace=trace,
        )
        self.trace: TraceWriter = trace
        self.pcap = pcap
        self._pipes: dict[str, list[TappedDirection]] = {}

    def _pcap_key(self, conn: RelayConnection) -> tuple[str, str]:
        # Taps share one capture: connection ids are only unique per tap.
        return (self.name, conn.id)

    def connection_opened(self, conn: RelayConnection) -> None:
        t = self.trace.now()
        self.trace.write(
            {
                "t": t,
                "kind": "conn",
                "tap": self.name,
                "conn": conn.id,
                "event": "open",
                "peer": _address(conn.client),
                "upstream": _address(conn.server),
            }
        )
        if self.pcap is not None:
            key, server = self._pcap_key(conn), conn.server
            if (":" in conn.client[0]) != (":" in server[0]):
                # An IPv6 client relayed to an IPv4 upstream cannot be one TCP
                # stream in a capture: record the tap's own listening side instead.
                own = conn.client_writer.get_extra_info("sockname")
                server = (str(own[0]), int(own[1]))
            self.pcap.open_connection(key, conn.client, server, t, interface=self.name)

    def connection_closed(self, conn: RelayConnection) -> None:
        t = self.trace.now()
        record = {
            "t": t,
            "kind": "conn",
            "tap": self.name,
            "conn": conn.id,
            "event": "close",
            "peer": _address(conn.client),
            "reason": conn.reason or "closed",
        }
        unfinished = {
            p.direction: p.unfinished for p in self._pipes.pop(conn.id, []) if p.unfinished
        }
        if unfinished:
            # A frame cut by the close: not a wire error (PROTOCOL.md 2.8), but worth seeing.
            record["unfinished"] = unfinished
        self.trace.write(record)
        if self.pcap is not None:
            initiator: PcapDirection = "s2c" if conn.half_closed[:1] == ["upstream"] else "c2s"
            if conn.reason is not None and "reset" in conn.reason:
                self.pcap.reset_connection(self._pcap_key(conn), t)
            else:
                self.pcap.close_connection(self._pcap_key(conn), t, initiator)

    def connection_half_closed(self, conn: RelayConnection, side: str) -> None:
        # The peer next to this tap closed: the moment it did, even when the other side
        # only hears of it much later (a partition holds the FIN back).
        self.trace.emit("conn", tap=self.name, conn=conn.id, event="half_close", side=side)

    def connection_failed(self, conn_id: str, client: Endpoint, error: str) -> None:
        for event in ("open", "close"):
            self.trace.emit(
                "conn",
                tap=self.name,
                conn=conn_id,
                event=event,
                peer=_address(client),
                reason=error,
            )

    def open_pipe(self, conn: RelayConnection, direction: str) -> TappedDirection:
        pipe = TappedDirection(self, conn, direction)
        self._pipes.setdefault(conn.id, []).append(pipe)
        return pipe


class TappedDirection:
    """One direction through the tap: forward, capture, then decode for the trace."""

    def __init__(self, tap: WireTap, conn: RelayConnection, direction: str) -> None:
        self.tap = tap
        self.conn = conn
        self.direction = direction
        self.decoder: FrameDecoder | None = FrameDecoder()
        self.decoded_bytes = 0  # stream offset where the next frame starts
        self.fed_bytes = 0

    @property
    def unfinished(self) -> int:
        return self.fed_bytes - self.decoded_bytes if self.decoder is not None else 0

    async def feed(self, chunk: bytes) -> None:
        tap = self.tap
        t = tap.trace.now()
        self.conn.write(self.direction, chunk)
        if tap.pcap is not None:
            tap.pcap.write(tap._pcap_key(self.conn), _PCAP_DIRECTION[self.direction], chunk, t)
        decoder = self.decoder
        if decoder is None:
            return
        self.fed_bytes += len(chunk)
        decoder.feed(chunk)
        try:
            while (frame := decoder.next_frame()) is not None:
                self.decoded_bytes += HEADER_SIZE + len(frame.payload)
                tap.trace.write(frame_record(tap.name, self.conn.id, self.direction, frame, t))
        except RemoteProtocolError as exc:
            self.decoder = None
            tap.trace.write(
                {
                    "t": t,
                    "kind": "wire_error",
                    "tap": tap.name,
                    "conn": self.conn.id,
                    "dir": self.direction,
                    "code": exc.code.value,
                    "error": exc.message,
                    "offset": self.decoded_bytes,
                }
            )

    async def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


def _address(endpoint: Endpoint) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def wire_tap_thread(
    name: str,
    upstream_host: str,
    upstream_port: int,
    *,
    trace: TraceWriter,
    pcap: PcapWriter | None = None,
    listen_host: str = "127.0.0.1",
    listen_port: int = 0,
) -> RelayThread[WireTap]:
    """A WireTap hosted in a background thread: `with wire_tap_thread(...) as tap:`."""
    return RelayThread(
        WireTap(
            name,
            upstream_host,
            upstream_port,
            trace=trace,
            pcap=pcap,
            listen_host=listen_host,
            listen_port=listen_port,
        )
    )
