"""One stderr console per command, shared by its log lines and its live status line.

Log records go through rich on the same console as `rich.live.Live`, so they print
above the status line instead of tearing through it.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

CONSOLE = Console(stderr=True)


def setup_logging(level: int = logging.INFO) -> Console:
    logging.basicConfig(
        level=level,
        format="%(name)s %(message)s",
        handlers=[RichHandler(console=CONSOLE, show_path=False, markup=False,
                              rich_tracebacks=False)],
        force=True,
    )
    return CONSOLE
