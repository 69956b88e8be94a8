"""`harness toxiproxy`: serve the embedded Toxiproxy until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from harness.commands.failures import cannot_listen


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for toxicity, jitter and slicing"
    )


def run(args: argparse.Namespace) -> int:
    from harness.toxiproxy import EmbeddedToxiproxy

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = EmbeddedToxiproxy(args.host, args.port, seed=args.seed)
    try:
        try:
            server.start()
        except OSError as exc:
            raise cannot_listen("the Toxiproxy API", args.host, args.port, exc) from None
        with server:
            print(f"embedded Toxiproxy listening on {server.url}", flush=True)
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
