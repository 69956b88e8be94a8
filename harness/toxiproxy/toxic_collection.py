"""A proxy's toxics, one ordered chain per direction (Toxiproxy's `toxic_collection.go`).

New toxics go to the end of their direction's chain. Every change is made to
the chain first and then pushed to each live link of that direction, so a
connection accepted while the change is in flight already starts from the new
chain and is not changed twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.toxiproxy.errors import (
    BAD_REQUEST_BODY,
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_ALREADY_EXISTS,
    TOXIC_NOT_FOUND,
)
from harness.toxiproxy.stream import Direction
from harness.toxiproxy.toxics import REGISTRY, Toxic

if TYPE_CHECKING:
    from harness.toxiproxy.link import ToxicLink

FLOAT32_MAX = 3.4028234663852886e38


@dataclass(eq=False)
class ToxicWrapper:
    """A toxic as the API names it; `toxic` and `toxicity` are replaced on update."""

    name: str
    type: str
    stream: str
    toxicity: float
    toxic: Toxic

    @property
    def direction(self) -> Direction:
        return Direction.parse(self.stream)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.attributes(),
        }


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """Go's decoder: a missing key or null keeps the default, a wrong type is a 400."""
    value = body.get(key)
    if value is None:
        return default
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise BAD_REQUEST_BODY.joined(f"field {key!r} has the wrong type: {value!r}")
    return value


def _toxicity(body: dict[str, Any], default: float) -> float:
    """Toxiproxy keeps toxicity in a float32: a number beyond its range does not decode."""
    toxicity = float(_field(body, "toxicity", (int, float), default))
    if not abs(toxicity) <= FLOAT32_MAX:
        raise BAD_REQUEST_BODY.joined(
            f"json: cannot unmarshal number {body['toxicity']} into field toxicity of type float32"
        )
    return toxicity


class ToxicCollection:
    def __init__(self) -> None:
        self.chains: dict[Direction, list[ToxicWrapper]] = {d: [] for d in Direction}
        self.links: set[ToxicLink] = set()

    def __iter__(self) -> Iterator[ToxicWrapper]:
        for direction in Direction:
            yield from self.chains[direction]

    def to_json(self) -> list[dict[str, Any]]:
        return [wrapper.to_json() for wrapper in self]

    def find(self, name: str) -> ToxicWrapper | None:
        return next((wrapper for wrapper in self if wrapper.name == name), None)

    def get(self, name: str) -> ToxicWrapper:
        wrapper = self.find(name)
        if wrapper is None:
            raise TOXIC_NOT_FOUND
        return wrapper

    def _links(self, direction: Direction) -> list[ToxicLink]:
        return [link for link in self.links if link.direction is direction]

    async def add_json(self, body: object) -> ToxicWrapper:
        if not isinstance(body, dict):
            raise BAD_REQUEST_BODY.joined("a toxic must be a JSON object")
        name: str = _field(body, "name", str, "")
        toxic_type: str = _field(body, "type", str, "")
        stream: str = _field(body, "stream", str, "downstream")
        toxicity = _toxicity(body, 1.0)
        # Go's ParseDirection ignores case; the name and the echoed stream keep the
        # spelling sent, as in toxic_collection.go.
        if stream.lower() not in ("upstream", "downstream"):
            raise INVALID_STREAM
        if not name:
            name = f"{toxic_type}_{stream}"
        toxic_class = REGISTRY.get(toxic_type)
        if toxic_class is None:
            raise INVALID_TOXIC_TYPE
        if self.find(name) is not None:
            raise TOXIC_ALREADY_EXISTS
        toxic = toxic_class.from_attributes(body.get("attributes"))
        wrapper = ToxicWrapper(name, toxic_type, stream, toxicity, toxic)
        self.chains[wrapper.direction].append(wrapper)
        links = self._links(wrapper.direction)
        await asyncio.gather(*(link.add_toxic(wrapper) for link in links))
        return wrapper

    async def update_json(self, name: str, body: object) -> ToxicWrapper:
        wrapper = self.get(name)
        if not isinstance(body, dict):
            raise BAD_REQUEST_BODY.joined("a toxic update must be a JSON object")
        toxicity = _toxicity(body, wrapper.toxicity)
        wrapper.toxic = type(wrapper.toxic).from_attributes(body.get("attributes"), wrapper.toxic)
        wrapper.toxicity = toxicity
        links = self._links(wrapper.direction)
        await asyncio.gather(*(link.update_toxic(wrapper) for link in links))
        return wrapper

    async def remove(self, name: str) -> None:
        wrapper = self.get(name)
        self.chains[wrapper.direction].remove(wrapper)
        links = self._links(wrapper.direction)
        await asyncio.gather(*(link.remove_toxic(wrapper) for link in links))

    async def reset(self) -> None:
        for wrapper in list(self):
            await self.remove(wrapper.name)
