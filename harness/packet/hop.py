"""The `packet` hop of a scenario path: two relays with the impaired TUN link between them.

    previous hop -> entry relay (127.0.0.1:port)
                 -> TCP across the TUN device: entry connects to .2, exit listens on .1
                 -> exit relay -> next hop (127.0.0.1:upstream)

The TCP connection in the middle is the one whose packets are lost, delayed
and queued; the relays on either side only copy bytes, as the wire taps do.
A Viewer-side tap therefore sees what arrived across the link, when it did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.packet import netem
from harness.packet.backends import NETEM, Backend, packet_backend
from harness.packet.capture import PacketCapture, retransmitted_segments
from harness.packet.impairer import Impairer
from harness.packet.impairment import Impairment
from harness.packet.tun import TunDevice
from harness.trace import TraceWriter
from harness.wire.relay import Relay, RelayConnection

FAULT_SOURCE = "packet"


class _Forward:
    """A pipe that copies bytes on unchanged."""

    def __init__(self, conn: RelayConnection, direction: str) -> None:
        self.conn, self.direction = conn, direction

    async def feed(self, chunk: bytes) -> None:
        self.conn.write(self.direction, chunk)

    async def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class ForwardingRelay(Relay):
    def open_pipe(self, conn: RelayConnection, direction: str) -> _Forward:
        return _Forward(conn, direction)


class PacketHop:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        seed: int,
        listen_host: str = "127.0.0.1",
        trace: TraceWriter | None = None,
        capture_path: str | None = None,
        backend: Backend | None = None,
        mtu: int = 1500,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host  # the entry's, in this namespace
        self.seed = seed
        self.trace = trace
        self.capture_path = capture_path
        self.backend = backend or packet_backend()
        self.mtu = mtu
        self.tun: TunDevice | None = None
        self.impairer: Impairer | None = None
        self.capture: PacketCapture | None = None
        self.relays: list[Relay] = []
        self.port = 0

    async def start(self) -> None:
        if not self.backend.available:
            raise RuntimeError(f"packet backend {self.backend.name}: {self.backend.detail}")
        self.tun = tun = await asyncio.to_thread(TunDevice, self.mtu)
        if self.backend.name == NETEM:
            for command in netem.setup_commands(tun.name, tun.addresses):
                await asyncio.to_thread(netem.run_tc, command)
        if self.capture_path:
            self.capture = PacketCapture(self.capture_path)
        self.impairer = Impairer(tun, seed=self.seed, capture=self.capture)
        self.impairer.start()
        exit_relay = ForwardingRelay(
            "packet-exit", *self.upstream, listen_host=tun.addresses.text("local"), trace=self.trace
        )
        await exit_relay.start()
        self.relays.append(exit_relay)
        entry = ForwardingRelay(
            "packet-entry", tun.addresses.text("primary"), exit_relay.port,
            listen_host=self.listen_host, trace=self.trace,
        )
        await entry.start()
        self.relays.append(entry)
        self.port = entry.port
        self._emit(
            "note",
            text=f"packet hop: backend {self.backend.name}, device {tun.name} {tun.network}, "
            f"capture {self.capture_path or 'none'}, seed {self.seed}",
        )

    def impair(self, directions: tuple[str, ...], impairment: Impairment) -> None:
        """Replace what is applied to each direction; traced as a `fault` record."""
        assert self.tun is not None and self.impairer is not None
        for direction in directions:
            if self.backend.name == NETEM:
                netem.run_tc(netem.change_command(self.tun.name, direction, impairment))
            else:
                self.impairer.set(direction, impairment)
            fault = "cleared" if impairment.is_clean else "impair"
            self._emit(
                "fault",
                source=FAULT_SOURCE,
                fault=fault,
                direction=direction,
                backend=self.backend.name,
                **impairment.as_dict(),
            )

    def stats(self) -> dict[str, Any]:
        return self.impairer.stats() if self.impairer is not None else {}

    async def stop(self) -> None:
        for relay in reversed(self.relays):
            await relay.stop()
        self.relays.clear()
        if self.impairer is not None:
            await asyncio.to_thread(self.impairer.stop)
            self._emit("note", text=f"packet hop counters: {self.impairer.stats()}")
            self.impairer = None
        if self.capture is not None:
            self.capture.close()
            resent = await asyncio.to_thread(retransmitted_segments, self.capture.path)
            self._emit("note", text=f"packet hop: {resent} retransmitted TCP segment(s) captured")
        if self.tun is not None:
            self.tun.close()
            self.tun = None

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.trace is not None:
            self.trace.emit(kind, **fields)
