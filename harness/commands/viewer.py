"""`harness viewer`: run the reference Viewer with a live status line and telemetry."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import IO, Any

from rich.live import Live
from rich.text import Text

from harness.commands.addresses import host_port
from harness.commands.console import CONSOLE, setup_logging
from harness.commands.failures import CommandFailed, cannot_listen, os_reason
from reference.peers.control import ViewerControlServer
from reference.peers.viewer import ReferenceViewer, ViewerConfig
from reference.protocol.deviations import VIEWER_DEVIATIONS, parse_deviations
from reference.protocol.states import ViewerState

log = logging.getLogger("harness.viewer")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", type=host_port, required=True, help="Primary HOST:PORT")
    parser.add_argument("--secret", required=True, help="shared secret for AUTH")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    parser.add_argument(
        "--telemetry",
        type=Path,
        default=None,
        help="write Viewer telemetry (JSON Lines) to FILE.jsonl",
    )
    parser.add_argument(
        "--telemetry-url",
        type=telemetry_url,
        default=None,
        help="also send telemetry as JSON lines to tcp://HOST:PORT (PROTOCOL.md 9.5)",
    )
    parser.add_argument(
        "--no-decode", action="store_true", help="parse and audit frame headers only (load tests)"
    )
    parser.add_argument(
        "--codec-backend", default="auto", help="auto | software | cuvid | qsv | v4l2m2m | vaapi"
    )
    parser.add_argument("--protocol-version", type=int, choices=(1, 2), default=2)
    parser.add_argument("--viewer-id", default="viewer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reconnect jitter")
    parser.add_argument(
        "--deviation",
        action="append",
        default=[],
        choices=sorted(d.value for d in VIEWER_DEVIATIONS),
        help="break one rule on purpose (testing the checkers)",
    )
    parser.add_argument(
        "--control",
        type=host_port,
        default=None,
        help="HOST:PORT for the HTTP control API (POST /background, /foreground)",
    )
    parser.add_argument("--quiet", action="store_true", help="no live status line")


def telemetry_url(text: str) -> tuple[str, int]:
    """tcp://HOST:PORT -> (host, port), the line protocol of PROTOCOL.md 9.5."""
    scheme, sep, address = text.partition("://")
    if scheme != "tcp" or not sep:
        raise argparse.ArgumentTypeError(f"expected tcp://HOST:PORT, got {text!r}")
    return host_port(address)


def disconnect_reason(record: dict[str, Any], host: str, port: int) -> str | None:
    """Why a `connection` telemetry record left the Viewer without a connection, if it did."""
    if record.get("event") != "connection":
        return None
    reason = record.get("reason") or "no reason given"
    if record.get("action") == "failed":
        return f"cannot connect to {host}:{port}: {reason}"
    if record.get("action") == "closed":
        return f"connection to {host}:{port} closed: {reason}"
    return None


def status_line(viewer: ReferenceViewer, why: str | None = None) -> Text:
    state = viewer.state
    s = viewer.stats
    colour = {"STREAMING": "green", "DISCONNECTED": "red"}.get(state.value, "yellow")
    audit = f"epoch {s.last_audit[0]} frame {s.last_audit[1]}" if s.last_audit else "-"
    server = viewer.conn.server_state.name if viewer.conn.server_state else "-"
    return Text.assemble(
        ("viewer ", "bold"),
        (state.value, colour),
        f"  server {server}  epoch {viewer.conn.epoch}  rendered {s.rendered}",
        f"  dropped {s.dropped}  audit {audit}  decoder {viewer.decoder_backend or '-'}",
        f"  connects {s.connects}",
        f"  ({why})" if why and state is ViewerState.DISCONNECTED else "",
    )


async def watch(args: argparse.Namespace) -> int:
    host, port = args.connect
    out: IO[str] | None = args.telemetry.open("w", encoding="utf-8") if args.telemetry else None
    remote: asyncio.StreamWriter | None = None
    if args.telemetry_url:
        to_host, to_port = args.telemetry_url
        try:
            _, remote = await asyncio.open_connection(to_host, to_port)
        except OSError as exc:
            if out is not None:
                out.close()
            raise CommandFailed(
                f"cannot send telemetry to tcp://{to_host}:{to_port}: {os_reason(exc)}"
            ) from None
    viewer: ReferenceViewer
    why: str | None = None  # the latest reason for being disconnected

    def sink(record: dict[str, Any]) -> None:
        nonlocal why
        if record.get("event") == "frame" and record.get("action") == "drop":
            viewer.stats.dropped += 1
        reason = disconnect_reason(record, host, port)
        if reason is not None and reason != why:
            log.warning("disconnected: %s", reason)  # once per new reason, not per retry
        why = reason or why
        line = json.dumps(record, separators=(",", ":")) + "\n"
        if out is not None:
            out.write(line)
            out.flush()  # PROTOCOL.md 9.1: the harness reads the file while we run
        if remote is not None and not remote.is_closing():
            remote.write(line.encode())  # sent as the loop runs: written as it happens (9.5)

    viewer = ReferenceViewer(
        ViewerConfig(
            host=host,
            port=port,
            secret=args.secret,
            decode=not args.no_decode,
            codec_backend=args.codec_backend,
            version=args.protocol_version,
            viewer_id=args.viewer_id,
            seed=args.seed,
            deviations=parse_deviations(args.deviation),
        ),
        sink=sink,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, viewer.stop)
    # The app to the background and back (PROTOCOL.md 7.12), like an Android activity.
    for sig, background in ((signal.SIGUSR1, True), (signal.SIGUSR2, False)):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, viewer.set_background, background)
    control = None
    if args.control:
        control = ViewerControlServer(viewer, *args.control)
        try:
            await control.start()
        except OSError as exc:
            if out is not None:
                out.close()
            control_host, control_port = args.control
            raise cannot_listen("the control API", control_host, control_port, exc) from None
        log.info("control API http://%s:%d", args.control[0], control.port)
    console = CONSOLE
    task = asyncio.create_task(viewer.run(args.duration))
    try:
        if args.quiet or not console.is_terminal:
            await task
        else:
            with Live(status_line(viewer, why), console=console, refresh_per_second=4) as live:
                while not task.done():
                    await asyncio.wait({task}, timeout=0.25)
                    live.update(status_line(viewer, why))
            await task
    finally:
        if control is not None:
            await control.close()
        if out is not None:
            out.close()
        if remote is not None:
            with contextlib.suppress(ConnectionError):
                await remote.drain()
            remote.close()
    after = f" ({why})" if why and viewer.state is ViewerState.DISCONNECTED else ""
    console.print(
        f"viewer finished in state {viewer.state.value}{after}: rendered {viewer.stats.rendered}, "
        f"audit failures {viewer.stats.audit_failures}"
    )
    return 0 if viewer.stats.rendered or viewer.state is ViewerState.STREAMING else 1


def run(args: argparse.Namespace) -> int:
    setup_logging()
    return asyncio.run(watch(args))
