"""Where the harness meets testees on other machines: a phone, a board, a second host.

Everything between the reference peers, the taps and the fault injectors stays on
loopback. Only what a testee must reach is bound on `listen_host`: the tap an
external Viewer connects to (on `listen_port` if given, so that a device can be
set up once; scenarios then run one at a time) and its telemetry inlet. Testees
are told `advertise_host` (`{host}`), the address they can reach, which is not
the bind address when it is 0.0.0.0 or behind NAT. A Primary on a device is not
started: the harness connects to `primary_address`, and runs the testee's
command, if one is given, to start it there.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from harness.scenarios.loader import Scenario

LOOPBACK = "127.0.0.1"
# How a suite run (pytest, maybe xdist workers) hands the addresses to each scenario.
LISTEN_ENV = "LVS_CERTIFY_LISTEN"
TELEMETRY_PORT_ENV = "LVS_CERTIFY_TELEMETRY_PORT"
ADVERTISE_ENV = "LVS_CERTIFY_ADVERTISE"
PRIMARY_ADDRESS_ENV = "LVS_CERTIFY_PRIMARY_ADDRESS"
# Actions that end the Primary process; a Primary the harness did not start cannot be restarted.
PRIMARY_LIFECYCLE = frozenset({"restart_primary", "kill_primary"})


class NetworkError(ValueError):
    """A bad --listen / --advertise / --primary-address value; the text is one line."""


@dataclass(frozen=True)
class Network:
    """The testee-facing addresses of a run (`harness certify --listen/--advertise/...`).

    listen_host, listen_port: where the external Viewer's tap and telemetry inlet
      listen (port 0: a free one per scenario); telemetry_port: the inlet's port
      (0: a free one; fixed, for a device set up once, as listen_port).
    advertise_host: the address put in `{host}` and printed; default listen_host
      (or, for 0.0.0.0 / ::, loopback).
    primary_address: (host, port) of a Primary the harness does not start.
    announce: print "point the Viewer at HOST:PORT" for each scenario to `out`.
    """

    listen_host: str = LOOPBACK
    listen_port: int = 0
    telemetry_port: int = 0
    advertise_host: str | None = None
    primary_address: tuple[str, int] | None = None
    announce: bool = False
    out: TextIO | None = None

    @property
    def advertised(self) -> str:
        if self.advertise_host:
            return self.advertise_host
        if self.listen_host in ("0.0.0.0", "::", ""):
            return LOOPBACK
        return self.listen_host

    def say(self, line: str) -> None:
        if self.announce:
            print(line, file=self.out if self.out is not None else sys.stdout, flush=True)

    def as_options(self) -> dict[str, str | None]:
        """The command-line forms, as `from_options(**options)` takes them back (a soak's
        case file, for its reproduction)."""
        primary = None
        if self.primary_address:
            host, port = self.primary_address
            primary = f"{url_host(host)}:{port}"
        return {
            "listen": f"{url_host(self.listen_host)}:{self.listen_port}",
            "advertise": self.advertise_host,
            "primary_address": primary,
            "telemetry_port": str(self.telemetry_port) if self.telemetry_port else None,
        }

    def to_environment(self) -> dict[str, str]:
        """The options as `from_environment` reads them back (an xdist worker, say)."""
        if not self.announce:
            return {}
        names = {"listen": LISTEN_ENV, "advertise": ADVERTISE_ENV,
                 "primary_address": PRIMARY_ADDRESS_ENV, "telemetry_port": TELEMETRY_PORT_ENV}
        return {names[k]: v for k, v in self.as_options().items() if v}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Network:
        """The addresses a suite run was given; loopback only if none."""
        env = os.environ if environ is None else environ
        listen, advertise = env.get(LISTEN_ENV), env.get(ADVERTISE_ENV)
        primary = env.get(PRIMARY_ADDRESS_ENV)
        if not (listen or advertise or primary):
            return cls()
        from harness.scenarios.operator import console

        telemetry = env.get(TELEMETRY_PORT_ENV)
        return cls.from_options(listen, advertise, primary, telemetry, out=console())

    @classmethod
    def from_options(
        cls,
        listen: str | None = None,
        advertise: str | None = None,
        primary_address: str | None = None,
        telemetry_port: str | int | None = None,
        *,
        out: TextIO | None = None,
    ) -> Network:
        """From the command-line forms; NetworkError with a one-line reason."""
        host, port = LOOPBACK, 0
        if listen:
            host, port = parse_address(listen, "--listen", port_required=False)
        if advertise is not None:
            advertise, with_port = parse_address(advertise, "--advertise", port_required=False)
            if with_port:
                raise NetworkError("--advertise: a HOST only; the port is the one listened on")
        primary = parse_address(primary_address, "--primary-address") if primary_address else None
        telemetry = str(telemetry_port or 0)
        if not telemetry.isdigit() or int(telemetry) > 65535:
            raise NetworkError(f"--telemetry-port: {telemetry!r} is not a port (0-65535)")
        return cls(
            listen_host=host,
            listen_port=port,
            telemetry_port=int(telemetry),
            advertise_host=advertise or None,
            primary_address=primary,
            announce=bool(listen or advertise or primary_address or telemetry_port),
            out=out,
        )


def parse_address(text: str, option: str, *, port_required: bool = True) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or without the port where allowed (port 0)."""
    form = "HOST:PORT" if port_required else "HOST[:PORT]"
    bad = NetworkError(f"{option}: expected {form}, got {text!r}")
    text = text.strip()
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise bad
        port_text = rest[1:]
    elif _ip6(text):
        host, port_text = text, ""  # a bare IPv6 address: no port
    else:
        host, _, port_text = text.partition(":")
    if not host or ":" in port_text or (port_required and not port_text):
        raise bad
    if not port_text:
        return host, 0
    if not port_text.isdigit() or int(port_text) > 65535:
        raise NetworkError(f"{option}: {port_text!r} is not a port (0-65535)")
    return host, int(port_text)


def socket_error(exc: OSError) -> str:
    """The system's words for a socket error ("Address already in use"), not asyncio's."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def url_host(host: str) -> str:
    """A host as written in a URL or HOST:PORT: IPv6 in brackets."""
    return f"[{host}]" if ":" in host else host


def _ip6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def not_applicable(scenario: Scenario, network: Network) -> str | None:
    """Why the scenario cannot run against a Primary the harness did not start, or None."""
    primary = scenario.primary
    if network.primary_address is None or primary.kind != "external" or primary.command:
        return None
    actions = sorted({s.do for s in scenario.timeline if s.do in PRIMARY_LIFECYCLE})
    if not actions:
        return None
    host, port = network.primary_address
    return (
        f"needs a command that starts the Primary at {host}:{port}: {', '.join(actions)}"
    )
