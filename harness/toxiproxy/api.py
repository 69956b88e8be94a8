"""Toxiproxy 2.x's HTTP API: a route table, then one small handler per route (`api.go`).

All handlers run on the server's event loop, one at a time: a change to the
toxics of live connections is finished before the next request is looked at,
which is what Toxiproxy's collection locks guarantee.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from harness.toxiproxy.errors import (
    BAD_REQUEST_BODY,
    MISSING_FIELD,
    ApiError,
    ProxyAlreadyStarted,
)
from harness.toxiproxy.http11 import Request, Response, path_segments
from harness.toxiproxy.proxy import Proxy
from harness.toxiproxy.proxy_collection import ProxyCollection, ProxySpec, decode_proxy

log = logging.getLogger(__name__)

PLAIN_TEXT = "text/plain; charset=utf-8"
# The Toxiproxy release whose API this server follows, marked as not the real thing.
VERSION = "2.12.0-embedded"

Params = dict[str, str]
RouteHandler = Callable[["ApiServer", Request, Params], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: str
    handler: RouteHandler

    def match(self, segments: list[str]) -> Params | None:
        parts = self.pattern.split("/")[1:]
        if len(parts) != len(segments):
            return None
        params: Params = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def encode_json(data: Any) -> bytes:
    """Go's json.Marshal: compact, and never NaN or Infinity, which JSON does not have."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, encode_json(data))


def plain_error(status: int, text: str) -> Response:
    """Go's http.Error: the text and a newline, labelled as plain text, not to be sniffed."""
    return Response(
        status, f"{text}\n".encode(), PLAIN_TEXT, {"X-Content-Type-Options": "nosniff"}
    )


def error_response(error: ApiError) -> Response:
    # api.go's apiError sets application/json, then hands the JSON to http.Error, which
    # relabels it: clients get the JSON object as text/plain.
    return plain_error(error.status, encode_json(error.to_json()).decode())


def _reject_constant(name: str) -> None:
    # Python's json reads NaN and Infinity; Go's decoder, like JSON itself, does not.
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"json: number {text} is out of range")
    return value


def decode_body(request: Request) -> object:
    if not request.body.strip():
        raise BAD_REQUEST_BODY.joined("EOF")
    try:
        return json.loads(
            request.body, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except RecursionError as exc:
        # Nesting deeper than the interpreter's recursion limit (about 1,000 levels; Go
        # allows 10,000) is refused with Go's own words for it.
        raise BAD_REQUEST_BODY.joined("exceeded max depth") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BAD_REQUEST_BODY.joined(str(exc)) from exc


class ApiServer:
    def __init__(self, rng: random.Random) -> None:
        self.collection = ProxyCollection(rng)
        self._lock = asyncio.Lock()

    async def handle(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            # Toxiproxy refuses browsers, so a web page cannot drive it (CSRF).
            return plain_error(403, "User agent not allowed")
        segments = path_segments(request.path)
        path_matched = False
        for route in ROUTES:
            params = route.match(segments)
            if params is None:
                continue
            path_matched = True
            if request.method not in route.methods:
                continue
            async with self._lock:
                try:
                    return await route.handler(self, request, params)
                except ApiError as error:
                    return error_response(error)
                except Exception as exc:
                    log.exception("%s %s failed", request.method, request.path)
                    return error_response(ApiError(str(exc), 500))
        if path_matched:
            # gorilla/mux writes the bare status: no body, no Content-Type.
            return Response(405, b"", None)
        return plain_error(404, "404 page not found")

    async def shutdown(self) -> None:
        async with self._lock:
            for proxy in self.collection.proxies.values():
                proxy.stop()

    # --- handlers, in api.go's order ---------------------------------------------------
    async def reset_state(self, request: Request, params: Params) -> Response:
        for proxy in self.collection.proxies.values():
            try:
                await proxy.start()
            except ProxyAlreadyStarted:
                pass
            await proxy.toxics.reset()
        return Response(204)

    async def proxy_index(self, request: Request, params: Params) -> Response:
        return json_response({name: p.to_json() for name, p in self.collection.proxies.items()})

    async def proxy_create(self, request: Request, params: Params) -> Response:
        spec = decode_proxy(decode_body(request), ProxySpec("", "", "", True))
        if not spec.name:
            raise MISSING_FIELD.joined("name")
        if not spec.upstream:
            raise MISSING_FIELD.joined("upstream")
        proxy = await self.collection.add(spec)
        return json_response(proxy.to_json(), 201)

    async def populate(self, request: Request, params: Params) -> Response:
        try:
            proxies = await self.collection.populate(decode_body(request))
        except ApiError as error:
            # Toxiproxy returns the error and the proxies field together, with the error's status.
            return json_response({**error.to_json(), "proxies": None}, error.status)
        # Go marshals an empty list of proxies as a nil slice: null, not [].
        return json_response({"proxies": [proxy.to_json() for proxy in proxies] or None}, 201)

    async def proxy_show(self, request: Request, params: Params) -> Response:
        return json_response(self.collection.get(params["proxy"]).to_json())

    async def proxy_update(self, request: Request, params: Params) -> Response:
        proxy: Proxy = self.collection.get(params["proxy"])
        current = ProxySpec(proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        spec = decode_proxy(decode_body(request), current)
        await proxy.update(spec.listen, spec.upstream, spec.enabled)
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: Request, params: Params) -> Response:
        self.collection.remove(params["proxy"])
        return Response(204)

    async def toxic_index(self, request: Request, params: Params) -> Response:
        return json_response(self.collection.get(params["proxy"]).toxics.to_json())

    async def toxic_create(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        wrapper = await proxy.toxics.add_json(decode_body(request))
        return json_response(wrapper.to_json())

    async def toxic_show(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        return json_response(proxy.toxics.get(params["toxic"]).to_json())

    async def toxic_update(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        wrapper = await proxy.toxics.update_json(params["toxic"], decode_body(request))
        return json_response(wrapper.to_json())

    async def toxic_delete(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        await proxy.toxics.remove(params["toxic"])
        return Response(204)

    async def version(self, request: Request, params: Params) -> Response:
        body = (json.dumps({"version": VERSION}) + "\n").encode()
        return Response(200, body, "application/json;charset=utf-8")


ROUTES: tuple[Route, ...] = (
    Route(("POST",), "/reset", ApiServer.reset_state),
    Route(("GET",), "/proxies", ApiServer.proxy_index),
    Route(("POST",), "/proxies", ApiServer.proxy_create),
    Route(("POST",), "/populate", ApiServer.populate),
    Route(("GET",), "/proxies/{proxy}", ApiServer.proxy_show),
    Route(("POST", "PATCH"), "/proxies/{proxy}", ApiServer.proxy_update),
    Route(("DELETE",), "/proxies/{proxy}", ApiServer.proxy_delete),
    Route(("GET",), "/proxies/{proxy}/toxics", ApiServer.toxic_index),
    Route(("POST",), "/proxies/{proxy}/toxics", ApiServer.toxic_create),
    Route(("GET",), "/proxies/{proxy}/toxics/{toxic}", ApiServer.toxic_show),
    Route(("POST", "PATCH"), "/proxies/{proxy}/toxics/{toxic}", ApiServer.toxic_update),
    Route(("DELETE",), "/proxies/{proxy}/toxics/{toxic}", ApiServer.toxic_delete),
    Route(("GET",), "/version", ApiServer.version),
)
