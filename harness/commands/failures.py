"""How a subcommand fails for a reason the user can fix: one line, no traceback."""

from __future__ import annotations

import os


class CommandFailed(Exception):
    """Printed by `harness` as `harness COMMAND: MESSAGE`, exit status 1."""


def os_reason(exc: OSError) -> str:
    """The operating system's words for an error ("Address already in use").

    Name lookups fail with a negative errno and carry their words in `strerror`.
    """
    return os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc.strerror or exc)


def cannot_listen(what: str, host: str, port: int, exc: OSError) -> CommandFailed:
    return CommandFailed(f"cannot listen on {host}:{port} for {what}: {os_reason(exc)}")
