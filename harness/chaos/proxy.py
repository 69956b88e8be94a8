"""The frame proxy: a relay that decodes LVS frames both ways and applies frame faults.

With no fault on a direction the bytes go out exactly as they came, chunk by
chunk; the decoder still runs so that a fault added later starts on a frame
boundary. With faults, each whole frame goes through the chain of
`FaultStage`s and is re-encoded at the end. Bytes a peer sent that do not
decode are recorded as `wire_error` and forwarded raw: the proxy never masks
a peer's mistake, and the other direction keeps working.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Mapping
from typing import Any

from harness.chaos.faults import Fault, make_fault
from harness.chaos.faults.base import Item, frame_bytes
from harness.chaos.stage import FaultRuntime, FaultStage
from harness.trace import TraceWriter
from harness.wire.relay import Relay, RelayConnection, RelayThread
from reference.protocol.errors import RemoteProtocolError
from reference.protocol.frames import HEADER_SIZE, FrameDecoder

# Frames held or delayed by faults, per direction, before reading from the
# sender pauses: a long stall or delay applies backpressure instead of memory.
HOLD_LIMIT = 16 * 1024 * 1024


class FrameProxy(Relay):
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        trace: TraceWriter | None = None,
        seed: int = 0,
        name: str = "frame_proxy",
    ) -> None:
        super().__init__(
            name,
            upstream_host,
            upstream_port,
            listen_host=listen_host,
            listen_port=listen_port,
            trace=trace,
        )
        self.seed = seed
        self.faults: dict[str, FaultRuntime] = {}
        self._links: dict[str, list[FrameLink]] = {}
        self._fault_ids = itertools.count(1)

    # --- faults ------------------------------------------------------------------

    def add_fault(self, fault: Fault | Mapping[str, Any]) -> str:
        """Start a fault on every connection, open or future; returns its id ("f1", ...)."""
        if not isinstance(fault, Fault):
            fault = make_fault(fault)
        fault_id = f"f{next(self._fault_ids)}"
        seed = fault.seed if fault.seed is not None else self.seed
        runtime = FaultRuntime(
            fault_id,
            fault,
            # A string seed is hashed deterministically (not with PYTHONHASHSEED).
            random.Random(f"{seed}/{fault_id}"),
            asyncio.get_running_loop().time(),
        )
        self.faults[fault_id] = runtime
        self.record_fault(runtime, "added", params=fault.params())
        for link in self._all_links():
            link.add_stage(runtime)
        return fault_id

    def remove_fault(self, fault_id: str) -> None:
        """Stop a fault; frames it holds are delivered now, in order."""
        runtime = self.faults.pop(fault_id, None)
        if runtime is None:
            active = ", ".join(self.faults) or "none"
            raise KeyError(f"no frame fault {fault_id!r} (active: {active})")
        for link in self._all_links():
            link.remove_stage(runtime)
        self.record_fault(runtime, "removed", seen=runtime.seen, applied=runtime.applied)

    def clear(self) -> None:
        for fault_id in list(self.faults):
            self.remove_fault(fault_id)

    def record_fault(self, runtime: FaultRuntime, action: str, **fields: Any) -> None:
        if self.trace is None:
            return
        record: dict[str, Any] = {
            "t": self.trace.now(),
            "kind": "fault",
            "source": "frame_proxy",
            "proxy": self.name,
            "fault": runtime.fault.type_name,
            "fault_id": runtime.fault_id,
            "action": action,
        }
        if runtime.fault.id is not None:
            record["id"] = runtime.fault.id
        record.update(fields)
        self.trace.write(record)

    def _all_links(self) -> list[FrameLink]:
        return [link for links in self._links.values() for link in links]

    # --- the relay's hooks -----------------------------------------------------------

    def open_pipe(self, conn: RelayConnection, direction: str) -> FrameLink:
        link = FrameLink(self, conn, direction)
        for runtime in self.faults.values():
            link.add_stage(runtime)
        self._links.setdefault(conn.id, []).append(link)
        return link

    def connection_closed(self, conn: RelayConnection) -> None:
        self._links.pop(conn.id, None)


class FrameLink:
    """One direction of one connection through the proxy: decode, fault, re-encode."""

    def __init__(self, proxy: FrameProxy, conn: RelayConnection, direction: str) -> None:
        self.proxy = proxy
        self.conn = conn
        self.direction = direction
        self.loop = asyncio.get_running_loop()
        self.stages: list[FaultStage] = []
        self._decoder: FrameDecoder | None = FrameDecoder()
        # Input bytes not yet forwarded: the frame being assembled while faults are
        # on. A frame already partly forwarded raw when a fault arrived finishes raw.
        self._tail = bytearray()  # always the input bytes [_sent, _fed)
        self._fed = 0  # stream offsets of this direction's input
        self._framed = 0  # where the next frame starts
        self._sent = 0  # everything before this is forwarded or in the fault chain
        self._held = 0
        self._room = asyncio.Event()
        self._room.set()

    # --- the chain ---------------------------------------------------------------

    def add_stage(self, runtime: FaultRuntime) -> None:
        if self._decoder is None or not runtime.fault.applies_to(self.direction):
            return  # a broken stream is forwarded raw: no fault applies to it any more
        stage = FaultStage(runtime, self)
        if self.stages:
            self.stages[-1].next = stage.push
        self.stages.append(stage)

    def remove_stage(self, runtime: FaultRuntime) -> None:
        for i, stage in enumerate(self.stages):
            if stage.runtime is runtime:
                # Held frames go on to the stage after it, as if the fault let them pass.
                stage.flush()
                del self.stages[i]
                if i > 0:
                    self.stages[i - 1].next = stage.next
                return

    def output(self, item: Item) -> None:
        self.conn.write(self.direction, item if isinstance(item, bytes) else frame_bytes(item))

    def hold_bytes(self, delta: int) -> None:
        self._held += delta
        if self._held <= HOLD_LIMIT:
            self._room.set()

    def close_connection(self, reason: str) -> None:
        self.conn.close(reason)

    # --- the Pipe protocol ---------------------------------------------------------

    async def feed(self, chunk: bytes) -> None:
        decoder = self._decoder
        if decoder is None:
            self.conn.write(self.direction, chunk)
            return
        self._fed += len(chunk)
        if not self.stages and not self._tail:
            # No fault: the bytes go out as they came; decoding only tracks framing.
            self.conn.write(self.direction, chunk)
            self._sent = self._fed
            decoder.feed(chunk)
            try:
                while (frame := decoder.next_frame()) is not None:
                    self._framed += HEADER_SIZE + len(frame.payload)
            except RemoteProtocolError as exc:
                self._broken(exc)
            return
        tail = self._tail
        tail += chunk
        decoder.feed(chunk)
        try:
            while (frame := decoder.next_frame()) is not None:
                start = self._framed
                self._framed = end = start + HEADER_SIZE + len(frame.payload)
                if self._sent > start:
                    # The frame's start went out raw before the faults came: finish it raw.
                    rest = end - self._sent
                    self.conn.write(self.direction, bytes(tail[:rest]))
                    del tail[:rest]
                    self._sent = end
                    continue
                del tail[: end - start]
                self._sent = end
                if self.stages:
                    self.stages[0].push(frame)
                else:
                    self.output(frame)
                if self.conn.reason is not None:
                    return  # a fault closed the connection: the rest has nowhere to go
        except RemoteProtocolError as exc:
            self._broken(exc)
            return
        while self._held > HOLD_LIMIT:
            self._room.clear()
            await self._room.wait()

    async def finish(self) -> None:
        for stage in list(self.stages):
            await stage.settle()

    def close(self) -> None:
        for stage in self.stages:
            stage.close()
        self._room.set()

    def _broken(self, exc: RemoteProtocolError) -> None:
        """The sender's bytes stopped decoding: say so once, then relay everything raw."""
        offset = self._framed
        self._decoder = None
        for stage in self.stages:
            stage.flush()  # what came before the bad bytes still goes first
        self.stages = []
        if self._tail:
            self.conn.write(self.direction, bytes(self._tail))
            self._tail.clear()
        if self.proxy.trace is not None:
            self.proxy.trace.emit(
                "wire_error",
                source="frame_proxy",
                proxy=self.proxy.name,
                conn=self.conn.id,
                dir=self.direction,
                code=exc.code.value,
                error=exc.message,
                offset=offset,
            )


class FrameProxyThread(RelayThread[FrameProxy]):
    """A FrameProxy on its own loop in a background thread, for synchronous callers."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        trace: TraceWriter | None = None,
        seed: int = 0,
        name: str = "frame_proxy",
    ) -> None:
        super().__init__(
            FrameProxy(
                upstream_host,
                upstream_port,
                listen_host=listen_host,
                listen_port=listen_port,
                trace=trace,
                seed=seed,
                name=name,
            )
        )

    def __enter__(self) -> FrameProxyThread:
        self.start()
        return self

    def add_fault(self, fault: Fault | Mapping[str, Any]) -> str:
        return self.call(self.relay.add_fault, fault)

    def remove_fault(self, fault_id: str) -> None:
        self.call(self.relay.remove_fault, fault_id)

    def clear(self) -> None:
        self.call(self.relay.clear)
