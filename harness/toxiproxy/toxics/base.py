"""The toxic contract and the per-connection stub a toxic runs on (Toxiproxy's `toxics/toxic.go`).

A toxic is a small immutable dataclass whose fields are exactly its JSON
attributes, plus one coroutine, `pipe`, that moves chunks from `stub.input` to
`stub.output`. The same toxic object serves every connection; anything that
must survive per connection lives in `stub.state` (see `new_state`).

Toxiproxy interrupts a running toxic (to add, update or remove one) through an
`Interrupt` channel. Here the stub cancels the `pipe` task instead, so a toxic
that is holding a chunk across an `await` catches `CancelledError`, hands the
chunk on, and re-raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from harness.toxiproxy.errors import BAD_REQUEST_BODY
from harness.toxiproxy.stream import ChunkChannel, StreamChunk

log = logging.getLogger(__name__)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Toxic:
    """Base of every toxic; subclasses are `@dataclass(frozen=True)` with int fields."""

    type_name: ClassVar[str]

    async def pipe(self, stub: ToxicStub) -> None:
        raise NotImplementedError

    def new_state(self) -> Any:
        """Per-connection state kept across restarts of `pipe` (Toxiproxy's StatefulToxic)."""
        return None

    def cleanup(self, stub: ToxicStub) -> None:
        """Called when the toxic is removed from a live connection (Toxiproxy's CleanupToxic)."""

    def attributes(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_attributes(cls, attributes: object, base: Toxic | None = None) -> Toxic:
        """Decode the JSON `attributes` object the way Go's json.Decoder fills a struct:
        unknown keys are ignored, null leaves the field as it was, a wrong type is a 400."""
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, Mapping):
            raise BAD_REQUEST_BODY.joined(
                f"attributes must be a JSON object, got {type(attributes).__name__}"
            )
        changes: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            value = attributes.get(field.name)
            if value is None:
                continue
            # Toxiproxy's attributes are Go int64s: a fraction or a number out of that
            # range does not decode.
            if isinstance(value, bool) or not isinstance(value, int) or not (
                INT64_MIN <= value <= INT64_MAX
            ):
                raise BAD_REQUEST_BODY.joined(
                    f"attribute {field.name!r} of {cls.type_name} must be a 64-bit integer, "
                    f"got {value!r}"
                )
            changes[field.name] = value
        start = base if isinstance(base, cls) else cls()
        return dataclasses.replace(start, **changes)


class ToxicStub:
    """One toxic's place in one link: its input and output channels, state and task."""

    def __init__(
        self,
        input: ChunkChannel,
        output: ChunkChannel,
        rng: random.Random,
        reset_connection: Callable[[], None],
    ) -> None:
        self.input = input
        self.output = output
        self.rng = rng
        self.state: Any = None
        self.closed = False
        self.name = ""  # the toxic's API name; empty for the link's hidden noop head
        self._reset_connection = reset_connection
        self._task: asyncio.Task[None] | None = None

    # --- what a toxic's pipe() uses -------------------------------------------------
    async def read(self) -> StreamChunk | None:
        return await self.input.get()

    def write(self, chunk: StreamChunk) -> None:
        self.output.put(chunk)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def close(self) -> None:
        """End the stream here: everything after this toxic sees end of stream."""
        if not self.closed:
            self.closed = True
            self.output.put(None)

    def reset_peer(self) -> None:
        """Close with SO_LINGER 0 on both sockets, so the peers get RST instead of FIN."""
        self._reset_connection()
        self.close()

    # --- what the link uses ---------------------------------------------------------
    def run(self, toxic: Toxic, toxicity: float) -> None:
        # Toxicity is rolled each time a toxic starts on a stub, as in Toxiproxy: once
        # per connection and direction, and again whenever the chain is changed live.
        # Certain outcomes do not draw, so a seeded run's sequence depends only on the
        # toxics that are actually left to chance.
        if toxicity >= 1.0:
            applies = True
        elif toxicity <= 0.0:
            applies = False
        else:
            applies = self.rng.random() < toxicity
        chosen = toxic if applies else _NOOP
        self._task = asyncio.get_running_loop().create_task(self._guarded(chosen))

    async def interrupt(self) -> bool:
        """Stop the running toxic so it can be replaced; False if the stream already ended."""
        if self.closed:
            return False
        self.input.bypass = None  # from now on chunks wait for whatever runs next
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        return True

    def cancel(self) -> None:
        self.input.bypass = None
        if self._task is not None:
            self._task.cancel()

    async def _guarded(self, toxic: Toxic) -> None:
        try:
            await toxic.pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A broken toxic must not leave the connection hanging half-open.
            log.exception("toxic %s failed; closing its stream", self.name or "noop")
            self.close()


@dataclasses.dataclass(frozen=True)
class NoopToxic(Toxic):
    """Passes every chunk through; heads every link so the first real toxic can be paused."""

    type_name = "noop"

    async def pipe(self, stub: ToxicStub) -> None:
        # Data needs no task of ours: while we wait, the input hands it straight on
        # (end of stream still comes here, so the stub closes as it should).
        stub.input.bypass = stub.write
        try:
            while True:
                chunk = await stub.read()
                if chunk is None:
                    stub.close()
                    return
                stub.write(chunk)
        finally:
            stub.input.bypass = None


_NOOP = NoopToxic()
