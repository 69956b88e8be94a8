"""All proxies of one server, keyed by name (Toxiproxy's `proxy_collection.go`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from harness.toxiproxy.errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    ApiError,
)
from harness.toxiproxy.proxy import Proxy, parse_listen


@dataclass(frozen=True)
class ProxySpec:
    """The fields a client may send for a proxy, after Go-style decoding."""

    name: str
    listen: str
    upstream: str
    enabled: bool


def decode_proxy(body: object, defaults: ProxySpec) -> ProxySpec:
    if not isinstance(body, dict):
        raise BAD_REQUEST_BODY.joined(
            f"json: cannot unmarshal {type(body).__name__} into a proxy object"
        )
    values: dict[str, Any] = {}
    for key, kind in (("name", str), ("listen", str), ("upstream", str), ("enabled", bool)):
        value = body.get(key)
        if value is None:
            values[key] = getattr(defaults, key)
        elif isinstance(value, kind):
            values[key] = value
        else:
            raise BAD_REQUEST_BODY.joined(f"field {key!r} must be a {kind.__name__}: {value!r}")
    return ProxySpec(**values)


class ProxyCollection:
    def __init__(self, rng: random.Random) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._rng = rng

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    def new_proxy(self, spec: ProxySpec) -> Proxy:
        return Proxy(spec.name, spec.listen, spec.upstream, self._rng)

    async def add(self, spec: ProxySpec) -> Proxy:
        if spec.name in self.proxies:
            raise PROXY_ALREADY_EXISTS
        proxy = self.new_proxy(spec)
        if spec.enabled:
            await proxy.start()
        self.proxies[spec.name] = proxy
        return proxy

    async def add_or_replace(self, spec: ProxySpec) -> Proxy:
        existing = self.proxies.get(spec.name)
        if existing is not None:
            if existing.listen == spec.listen and existing.upstream == spec.upstream:
                return existing
            existing.stop()
        proxy = self.new_proxy(spec)
        if spec.enabled:
            await proxy.start()
        self.proxies[spec.name] = proxy
        return proxy

    def remove(self, name: str) -> None:
        self.get(name).stop()
        del self.proxies[name]

    async def populate(self, body: object) -> list[Proxy]:
        """Validate the whole list first, then create or replace each proxy in order."""
        if not isinstance(body, list):
            raise BAD_REQUEST_BODY.joined("json: populate expects an array of proxies")
        specs: list[ProxySpec] = []
        seen: set[str] = set()
        for number, item in enumerate(body, start=1):
            spec = decode_proxy(item, ProxySpec("", "", "", True))
            if not spec.name:
                raise MISSING_FIELD.joined(f"name at proxy {number}")
            if not spec.upstream:
                raise MISSING_FIELD.joined(f"upstream at proxy {number}")
            if spec.enabled:
                parse_listen(spec.listen)  # a malformed address fails before any change
            if spec.name in seen:
                raise ApiError(f'duplicate proxy name "{spec.name}"', 500)
            seen.add(spec.name)
            specs.append(spec)
        return [await self.add_or_replace(spec) for spec in specs]
