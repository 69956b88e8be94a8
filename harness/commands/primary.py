"""`harness primary`: run the reference Primary with a live status line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from rich.live import Live
from rich.text import Text

from harness.commands.addresses import host_port
from harness.commands.console import CONSOLE, setup_logging
from harness.commands.failures import cannot_listen
from reference.peers.control import ControlServer
from reference.peers.primary import PrimaryConfig, ReferencePrimary, StreamConfig
from reference.protocol.deviations import PRIMARY_DEVIATIONS, parse_deviations


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 7450),
        help="HOST:PORT to listen on (default 127.0.0.1:7450)",
    )
    parser.add_argument("--secret", required=True, help="shared secret for AUTH")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    parser.add_argument(
        "--codec-backend",
        default="auto",
        help="auto | software | nvenc | qsv | amf | v4l2m2m | vaapi",
    )
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=800_000)
    parser.add_argument(
        "--gop", type=positive_int, default=None, help="frames between keyframes (default 2 s)"
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="code one GOP once and send it in a loop (load tests: no encoder cost; the "
        "pictures repeat, so for header-only Viewers)",
    )
    parser.add_argument("--legacy", action="store_true", help="behave as a version-1 Primary")
    parser.add_argument("--no-audio", action="store_true", help="stream video only (no Opus)")
    parser.add_argument(
        "--control",
        type=host_port,
        default=None,
        help="HOST:PORT for the HTTP control API (reconfigure, pause, ...)",
    )
    parser.add_argument(
        "--deviation",
        action="append",
        default=[],
        choices=sorted(d.value for d in PRIMARY_DEVIATIONS),
        help="break one rule on purpose (testing the checkers)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="where a rare --deviation strikes (e.g. rare_stale_epoch; default 0)",
    )
    parser.add_argument(
        "--max-unauthenticated",
        type=positive_int,
        default=256,
        help="connections allowed open before AUTH_OK; beyond it the oldest is closed",
    )
    parser.add_argument("--quiet", action="store_true", help="no live status line")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def status_line(status: dict[str, object]) -> Text:
    return Text.assemble(
        ("primary ", "bold"),
        (f"{status['state']}", "green" if status["state"] == "ACTIVE" else "yellow"),
        f"  epoch {status['epoch']}  viewers {status['streaming_viewers']}/{status['viewers']}",
        f"  {status['width']}x{status['height']}@{status['fps']}",
        f"  {int(status['bitrate']) // 1000} kbit/s  backend {status['backend']}",  # type: ignore[call-overload]
        f"  frames {status['frames_sent']}",
        f"  unauth {status['unauthenticated']} (dropped {status['unauthenticated_dropped']})",
        (
            f"  handler errors {status['handler_errors']}",
            "bold red" if status["handler_errors"] else "",
        ),
    )


async def serve(args: argparse.Namespace) -> int:
    host, port = args.listen
    config = PrimaryConfig(
        secret=args.secret,
        host=host,
        port=port,
        codec_backend=args.codec_backend,
        version=1 if args.legacy else 2,
        stream=StreamConfig(
            width=args.width,
            height=args.height,
            fps=args.fps,
            bitrate=args.bitrate,
            gop=args.gop if args.gop is not None else args.fps * 2,
        ),
        audio=not args.no_audio,
        replay=args.replay,
        deviations=parse_deviations(args.deviation),
        max_unauthenticated=args.max_unauthenticated,
        seed=args.seed,
    )
    primary = ReferencePrimary(config)
    try:
        await primary.start()
    except OSError as exc:
        raise cannot_listen("Viewers", host, port, exc) from None
    control = None
    if args.control:
        control = ControlServer(primary, *args.control)
        try:
            await control.start()
        except OSError as exc:
            await primary.close()
            control_host, control_port = args.control
            raise cannot_listen("the control API", control_host, control_port, exc) from None
    console = CONSOLE
    console.print(
        f"primary listening on {host}:{primary.port}"
        + (f", control API http://{args.control[0]}:{control.port}" if control else "")
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    try:
        if args.quiet or not console.is_terminal:
            await stop.wait()
        else:
            with Live(status_line(primary.status()), console=console, refresh_per_second=4) as live:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.25)
                    live.update(status_line(primary.status()))
    finally:
        if control:
            await control.close()
        await primary.close()
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging()
    return asyncio.run(serve(args))
