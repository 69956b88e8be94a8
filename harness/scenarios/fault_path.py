"""The fault path between the Viewers and the Primary: taps and injectors, built once.

    Viewer -> tap viewer_side:<id> -> [hops, in the order given] -> tap primary_side -> Primary

A hop is `toxiproxy` (a Toxiproxy proxy, embedded or external: harness/toxiproxy/),
`frame_proxy` (frame-level faults: harness/chaos/) or `packet` (packet-level
impairment: harness/packet/hop.py). The path is built from the Primary outwards, each
hop listening on a loopback port of its own and forwarding to the one before it;
Viewers connect through a tap of their own to the entry. A scenario run
(harness/scenarios/runner.py) and a soak (harness/soak/run.py) both build theirs here,
so a hop added to one is on the other's path too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from harness.trace import PRIMARY_SIDE, TraceWriter, viewer_tap_name

Cleanup = Callable[[], Any]  # a stop function, sync or async


class FaultPath:
    """The hops of one run; `close` stops them, the last started first."""

    def __init__(
        self,
        host: str,
        *,
        trace: TraceWriter,
        seed: int,
        name: str,
        pcap: Any = None,
        packet_capture: str | None = None,
    ) -> None:
        """`name` names the Toxiproxy proxy; `pcap` (a PcapWriter) records every tap,
        none when None; `packet_capture` is the packet hop's own capture file."""
        self.host = host
        self.trace = trace
        self.seed = seed
        self.name = name
        self.pcap = pcap
        self.packet_capture = packet_capture
        self.primary_tap_port = 0  # the Primary as the hops see it (raw clients go here)
        self.entry_port = 0  # where a Viewer's tap connects: the outermost hop
        self.toxiproxy: Any = None  # the toxiproxy-python Proxy
        self.frame_proxy: Any = None
        self.packet_hop: Any = None
        self._cleanups: list[Cleanup] = []

    async def build(
        self,
        primary_port: int,
        hops: Sequence[str],
        primary_host: str | None = None,
        entry_host: str | None = None,
    ) -> None:
        """Tap the Primary, then start each hop, the last named first (nearest the Primary).

        `primary_host` is where the Primary listens when it is not on `host` (a device
        on the network); `entry_host` where the outermost hop listens when Viewers on
        other hosts connect to it straight (a soak's Locust workers). What was started
        before a failure is stopped by `close`, which the caller must arrange before
        calling this.
        """
        from harness.wire.recorder import WireTap

        tap = WireTap(
            PRIMARY_SIDE,
            primary_host or self.host,
            primary_port,
            trace=self.trace,
            pcap=self.pcap,
        )
        await tap.start()
        self._cleanups.append(tap.stop)
        self.primary_tap_port = upstream = int(tap.port)
        for hop in hops:
            if hop not in _STARTERS:
                known = ", ".join(HOPS)
                raise ValueError(f"unknown hop {hop!r} on the fault path (known: {known})")
        if entry_host is not None and not hops:
            raise ValueError("an entry address needs a hop on the fault path to listen there")
        for index, hop in reversed(list(enumerate(hops))):
            listen = entry_host if index == 0 and entry_host else self.host
            upstream = await _STARTERS[hop](self, upstream, listen)
        self.entry_port = upstream

    async def viewer_tap(
        self, viewer: str, listen_host: str | None = None, listen_port: int = 0
    ) -> Any:
        """A started tap for one Viewer, forwarding to the entry; the caller stops it.

        It listens on `listen_host` (default `host`) and `listen_port` (0: any): a
        testee Viewer on another machine connects to an address it can reach.
        """
        from harness.wire.recorder import WireTap

        tap = WireTap(
            viewer_tap_name(viewer),
            self.host,
            self.entry_port,
            trace=self.trace,
            pcap=self.pcap,
            listen_host=listen_host or self.host,
            listen_port=listen_port,
        )
        await tap.start()
        return tap

    async def close(self) -> None:
        """Stop every hop and the Primary's tap, outermost first; errors do not stop it."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            with contextlib.suppress(Exception):
                outcome = cleanup()
                if asyncio.iscoroutine(outcome) or isinstance(outcome, asyncio.Future):
                    await outcome

    # --- the hops -------------------------------------------------------------

    async def _start_frame_proxy(self, upstream: int, listen: str) -> int:
        from harness.chaos import FrameProxy

        self.frame_proxy = FrameProxy(self.host, upstream, trace=self.trace, seed=self.seed,
                                      listen_host=listen)
        await self.frame_proxy.start()
        self._cleanups.append(self.frame_proxy.stop)
        return int(self.frame_proxy.port)

    async def _start_toxiproxy(self, upstream: int, listen: str) -> int:
        return await asyncio.to_thread(self._start_toxiproxy_blocking, upstream, listen)

    def _start_toxiproxy_blocking(self, upstream: int, listen: str) -> int:
        from harness.toxiproxy.launcher import toxiproxy_client, toxiproxy_server

        stack = contextlib.ExitStack()
        server = stack.enter_context(toxiproxy_server(seed=self.seed))
        client = toxiproxy_client(server)
        name = f"lvs-{self.name}-{id(self) & 0xFFFFFF:x}"
        try:
            proxy = client.create(
                upstream=f"{self.host}:{upstream}", name=name, listen=f"{listen}:0"
            )
        except BaseException:
            stack.close()
            raise
        self.toxiproxy = proxy
        self.trace.emit("note", text=f"toxiproxy {server.kind} at {server.url}, proxy {name}")

        def close() -> None:
            with contextlib.suppress(Exception):
                proxy.destroy()
            stack.close()

        self._cleanups.append(lambda: asyncio.to_thread(close))
        return int(str(proxy.listen).rsplit(":", 1)[1])

    async def _start_packet_hop(self, upstream: int, listen: str) -> int:
        from harness.packet.hop import PacketHop

        hop = PacketHop(
            self.host,
            upstream,
            listen_host=listen,
            seed=self.seed,
            trace=self.trace,
            capture_path=self.packet_capture,
        )
        self._cleanups.append(hop.stop)
        await hop.start()
        self.packet_hop = hop
        return int(hop.port)


# hop name -> how it starts, given the port of the hop before it and the address it
# listens on; returns its own port.
_STARTERS: dict[str, Callable[[FaultPath, int, str], Awaitable[int]]] = {
    "frame_proxy": FaultPath._start_frame_proxy,
    "toxiproxy": FaultPath._start_toxiproxy,
    "packet": FaultPath._start_packet_hop,
}
HOPS = tuple(_STARTERS)
