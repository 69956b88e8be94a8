"""`harness doctor`: which fault backends this machine offers, and why any is missing."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil

from rich.console import Console
from rich.table import Table

from harness.packet.backends import BACKEND_ENV, Backend, netem, packet_backend, userspace


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _toxiproxy_embedded() -> Backend:
    try:
        importlib.import_module("harness.toxiproxy.server")
    except ImportError as exc:
        return Backend("toxiproxy (embedded)", False, f"cannot import it: {exc}")
    return Backend("toxiproxy (embedded)", True, "in-process, API-compatible Toxiproxy 2.x")


def _toxiproxy_real() -> Backend:
    from harness.toxiproxy.launcher import BINARY_NAME, URL_ENV

    name = "toxiproxy (real)"
    if os.environ.get(URL_ENV):
        return Backend(name, True, f"external server at ${URL_ENV}={os.environ[URL_ENV]}")
    found = shutil.which(BINARY_NAME)
    if found:
        return Backend(name, True, f"{found}, started per scenario")
    return Backend(name, False, f"no {BINARY_NAME} on PATH and no ${URL_ENV}")


def _frame_proxy() -> Backend:
    try:
        importlib.import_module("harness.chaos")
    except ImportError as exc:
        return Backend("frame proxy", False, f"cannot import it: {exc}")
    return Backend("frame proxy", True, "in-process LVS frame-level faults")


def _tshark() -> Backend:
    found = shutil.which("tshark")
    if found:
        return Backend("tshark", True, f"{found}: retransmission checks on packet.pcap")
    return Backend("tshark", False, "not installed (Debian: apt-get install tshark)")


def survey() -> list[Backend]:
    return [_toxiproxy_embedded(), _toxiproxy_real(), _frame_proxy(), netem(), userspace()]


def run(args: argparse.Namespace) -> int:
    backends = survey()
    chosen = packet_backend()
    tools = [_tshark()]
    if args.json:
        rows = [{"name": b.name, "available": b.available, "detail": b.detail} for b in backends]
        tool_rows = [{"name": b.name, "available": b.available, "detail": b.detail} for b in tools]
        packet = {"backend": chosen.name, "available": chosen.available}
        print(json.dumps({"backends": rows, "packet": packet, "tools": tool_rows}, indent=2))
        return 0
    console = Console()
    table = Table(title="Fault backends on this machine")
    table.add_column("Backend", style="bold")
    table.add_column("Available")
    table.add_column("Detail / why not", overflow="fold")
    for b in backends + tools:
        table.add_row(b.name, "[green]yes[/]" if b.available else "[red]no[/]", b.detail)
    console.print(table)
    if chosen.available:
        console.print(f"packet scenarios use the [bold]{chosen.name}[/] backend (${BACKEND_ENV})")
    else:
        console.print(f"packet scenarios are skipped: {chosen.name}: {chosen.detail}")
    return 0
