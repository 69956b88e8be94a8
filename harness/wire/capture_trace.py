"""A packet capture as a trace: what the monitors read, from a tcpdump or Wireshark file.

Certifying a device often starts from a capture taken on its network. Every TCP
connection in it is reassembled (`read_pcap_streams`) and decoded; those that
carry LVS frames become trace records exactly like a wire tap's: a `conn` open
at the first packet, one `frame` record per frame in stream order, `wire_error`
where a direction stopped decoding because a peer broke the framing, and a
`conn` close at the first FIN or RST.

Which end is the Primary: the end on `primary_port` when one is given, else the
end that sent AUTH_CHALLENGE (or PROTO), else the listening end. A connection
seen on an interface named after a harness tap (`primary_side`,
`viewer_side:<id>`) keeps that name, so a harness capture is judged exactly as
its taps were; any other capture is one link, and both peers are judged on it.

Times: a capture the harness wrote carries the offset between its wall-clock
timestamps and the trace's clock, which is taken off again, so the records line
up with that run's telemetry. Other captures keep their wall-clock times; a
telemetry file from the device is aligned to them by `align_telemetry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.trace import P2V, V2P, Record, frame_record, is_harness_tap
from harness.wire.pcap import PcapConnection, harness_clock_offset, read_pcap_streams
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import FrameType
from reference.protocol.messages import AuthChallenge, Proto, decode_message
from reference.protocol.states import ViewerState
from reference.protocol.telemetry import RecordKind, parse_line

FOREIGN_TAP = "capture"


@dataclass
class CaptureTrace:
    records: list[Record] = field(default_factory=list)
    connections: int = 0  # LVS connections found
    skipped: int = 0  # TCP connections that carried no LVS frame
    gaps: list[str] = field(default_factory=list)  # bytes the capture itself lost


def _sent_by_primary(conn: PcapConnection, primary_port: int | None) -> str:
    """The direction ("c2s" or "s2c") in which the Primary sends."""
    if primary_port is not None:
        if conn.server[1] == primary_port:
            return "s2c"
        if conn.client[1] == primary_port:
            return "c2s"
    for captured in conn.frames:
        if captured.frame.type is not FrameType.CONTROL:
            continue
        try:
            message = decode_message(captured.frame.payload)
        except RemoteProtocolError:
            continue
        if isinstance(message, AuthChallenge | Proto):
            return captured.direction
    return "s2c"


def _tap_name(conn: PcapConnection) -> str:
    return conn.interface if is_harness_tap(conn.interface) else FOREIGN_TAP


def capture_trace(path: Path, primary_port: int | None = None) -> CaptureTrace:
    ports = {primary_port} if primary_port is not None else None
    offset = harness_clock_offset(str(path)) or 0.0
    out = CaptureTrace()
    for number, conn in enumerate(read_pcap_streams(str(path), ports), start=1):
        protocol_errors = [e for e in conn.errors if e.code is not None]
        if not conn.frames and not protocol_errors:
            out.skipped += 1
            continue
        out.connections += 1
        tap, conn_id = _tap_name(conn), f"c{number}"
        primary_sends = _sent_by_primary(conn, primary_port)
        direction = {primary_sends: P2V, ("c2s" if primary_sends == "s2c" else "s2c"): V2P}
        peer = f"{conn.client[0]}:{conn.client[1]}"
        opened = (conn.opened if conn.opened is not None else conn.frames[0].timestamp) - offset
        out.records.append({"t": opened, "kind": "conn", "tap": tap, "conn": conn_id,
                            "event": "open", "peer": peer, "reason": ""})
        for captured in conn.frames:
            out.records.append(frame_record(
                tap, conn_id, direction[captured.direction], captured.frame,
                captured.timestamp - offset,
            ))
        for error in conn.errors:
            if error.code is None:
                out.gaps.append(f"{tap}/{conn_id} {direction[error.direction]}: {error.message}")
                continue
            out.records.append({"t": error.timestamp - offset, "kind": "wire_error", "tap": tap,
                                "conn": conn_id, "dir": direction[error.direction],
                                "code": error.code.value, "error": error.message})
        if conn.closed is not None:
            out.records.append({"t": conn.closed - offset, "kind": "conn", "tap": tap,
                                "conn": conn_id, "event": "close", "reason": "FIN or RST"})
    out.records.sort(key=lambda r: r["t"])  # stable: each connection keeps its own order
    return out


def read_telemetry_file(path: Path) -> list[Record]:
    """A Viewer's telemetry file (PROTOCOL.md section 9) as trace records."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                records.append({**parse_line(line, where=f"{path}:{number}"),
                                "kind": "telemetry"})
    return records


def align_telemetry(telemetry: list[Record], wire: Iterable[Record]) -> float:
    """Seconds to add to the telemetry's `t` to put it on the capture's clock.

    A device's telemetry uses its own monotonic clock. Its first SOCKET_CONNECTED is
    taken to be the first LVS connection's open on the capture (the device logs its
    connect a moment after the SYN; the error is that moment, well inside the
    tolerance).
    """
    first_open = min((r["t"] for r in wire if r["kind"] == "conn" and r["event"] == "open"),
                     default=None)
    first_connect = next(
        (r["t"] for r in telemetry
         if r.get("event") == RecordKind.STATE.value
         and r.get("state") == ViewerState.SOCKET_CONNECTED.value),
        None,
    )
    if first_open is None or first_connect is None:
        return 0.0
    return float(first_open - first_connect)
