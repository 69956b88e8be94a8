"""A proxy: a listener, the upstream it dials, its toxics and live connections (`proxy.go`)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from typing import Any

from harness.toxiproxy.errors import ApiError, ProxyAlreadyStarted
from harness.toxiproxy.link import Endpoint, ToxicLink
from harness.toxiproxy.stream import Direction
from harness.toxiproxy.toxic_collection import ToxicCollection

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, str]:
    """'host:port' or '[v6]:port' into host and port text; Go's net.SplitHostPort, loosely."""
    host, colon, port = address.rpartition(":")
    if not colon:
        raise ValueError(f"address {address}: missing port in address")
    return host.removeprefix("[").removesuffix("]"), port


def format_address(sockname: tuple[Any, ...]) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_port(text: str, network_error: str) -> int:
    """A port as Go's net package reads one: digits up to 65535 or a service name."""
    if text.isascii() and text.isdigit():
        if int(text) > 65535:
            raise ApiError(f"{network_error}: address {text}: invalid port", 400)
        return int(text)
    if not text:
        return 0
    try:
        return socket.getservbyname(text, "tcp")
    except OSError as exc:
        raise ApiError(f"{network_error}: lookup tcp/{text}: unknown port", 400) from exc


# The addresses Go's net.Listen("tcp", ...) treats as "everywhere" and serves dual-stack.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def parse_listen(listen: str) -> tuple[str, int]:
    """Host and port to bind, or a 400 for an address no socket could be bound to."""
    try:
        host, port_text = split_address(listen or ":0")
    except ValueError as exc:
        raise ApiError(f"listen tcp {listen}: {exc}", 400) from exc
    return host, parse_port(port_text, "listen tcp")


def bind_listener(listen: str) -> socket.socket:
    """Bind like Go's net.Listen: a malformed address is a 400 (refused before anything
    is bound), a failure to bind a 500 with Go's error text, as the real API returns it."""
    host, port = parse_listen(listen)
    sockaddr: tuple[Any, ...]
    try:
        if host in WILDCARD_HOSTS and socket.has_dualstack_ipv6():
            # Go listens on [::] with IPv4 mapped in, and reports "[::]:port".
            family, sockaddr = socket.AF_INET6, ("::", port)
        else:
            family, _, _, _, sockaddr = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
    except OSError as exc:
        reason = str(exc.strerror or exc).lower()
        raise ApiError(f"listen tcp {listen}: {reason}", 500) from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Go sets SO_REUSEADDR on listeners, so a disabled proxy can re-bind at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ApiError(f"listen tcp {listen}: bind: {reason}", 500) from exc
    return sock


class Connection:
    """A client accepted by a proxy and its upstream leg, joined by two links."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client = Endpoint(self._client_made, self._endpoint_lost)
        self.upstream = Endpoint(lambda _: None, self._endpoint_lost)
        self.links: list[ToxicLink] = []
        self._aborted = False
        self._torn_down = False
        proxy.connections.add(self)

    def _client_made(self, _: Endpoint) -> None:
        asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port_text = split_address(self.proxy.upstream)
            port = parse_port(port_text, "dial tcp")
            await loop.create_connection(lambda: self.upstream, host, port)
        except (OSError, ValueError, ApiError) as exc:
            log.info("proxy %s: upstream %s unreachable: %s", self.proxy.name,
                     self.proxy.upstream, exc)
            self.client.close()
            return
        if self._aborted or self.client.lost:
            self.upstream.abort()
            return
        toxics = self.proxy.toxics
        rng = self.proxy.rng
        self.links = [
            ToxicLink(Direction.UPSTREAM, self.client, self.upstream,
                      list(toxics.chains[Direction.UPSTREAM]), rng, self.reset),
            ToxicLink(Direction.DOWNSTREAM, self.upstream, self.client,
                      list(toxics.chains[Direction.DOWNSTREAM]), rng, self.reset),
        ]
        for link in self.links:
            toxics.links.add(link)
            link.start()

    def _endpoint_lost(self) -> None:
        upstream_done = self.upstream.lost or self.upstream.transport is None
        if self.client.lost and upstream_done and not self._torn_down:
            self._torn_down = True
            for link in self.links:
                link.stop()
                self.proxy.toxics.links.discard(link)
            self.proxy.connections.discard(self)

    def reset(self) -> None:
        self.client.set_linger_zero()
        self.upstream.set_linger_zero()

    def abort(self) -> None:
        self._aborted = True
        self.client.abort()
        self.upstream.abort()


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.rng = rng
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics.to_json(),
        }

    async def start(self) -> None:
        if self.enabled:
            raise ProxyAlreadyStarted(self.name)
        sock = bind_listener(self.listen)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self).client, sock=sock)
        # Like Toxiproxy, report the bound address, so ":0" becomes a real port.
        self.listen = format_address(sock.getsockname())
        self.enabled = True

    def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            # Closes the listening socket now: new connections are refused from here on.
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            connection.abort()

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        if listen != self.listen or upstream != self.upstream:
            self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                self.stop()
