"""Placeholders in an external peer's command line, and the same values in its environment.

A scenario's settings reach a testee through `{name}` placeholders, expanded with
`str.format_map`, and through `LVS_<NAME>` environment variables holding the same
values (docs/certify.md lists which role gets which). A command naming a placeholder
its role does not get is refused before anything runs (`unknown_placeholders`).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

# Placeholder -> what it holds; both roles get the COMMON ones.
COMMON: dict[str, str] = {
    "host": "the address the testee connects to (Viewer) or listens on (Primary)",
    "port": "the port the testee connects to (Viewer) or listens on (Primary)",
    "secret": "the shared secret of the scenario (or of the replaced Viewer)",
    "version": "the protocol version of the replaced peer (1 or 2)",
    "timing_scale": "the factor every protocol timing of the scenario is multiplied by",
    "run_dir": "the scenario's own output folder (traces, logs)",
    "scenario": "the scenario's name",
}
VIEWER_ONLY: dict[str, str] = {
    "telemetry": "the file the Viewer appends its telemetry records to (PROTOCOL.md 9)",
    "viewer_id": "the id the Viewer's telemetry records carry in `viewer`",
    "telemetry_url": "tcp://HOST:PORT taking the same records as JSON lines (PROTOCOL.md 9.5)",
    "telemetry_http_url": "http://HOST:PORT/telemetry taking them as POSTed JSON lines",
    "control": "HOST:PORT the Viewer's test-control interface listens on (PROTOCOL.md 15)",
    "control_port": "the port of the Viewer's test-control interface",
}
PRIMARY_ONLY: dict[str, str] = {
    "width": "the stream's width in pixels",
    "height": "the stream's height in pixels",
    "fps": "the stream's frame rate",
    "bitrate": "the stream's target bitrate in bit/s",
    "gop": "frames between periodic keyframes",
    "control": "HOST:PORT the Primary's test-control interface listens on",
    "control_port": "the port of the Primary's test-control interface",
}
VIEWER_PLACEHOLDERS = {**COMMON, **VIEWER_ONLY}
PRIMARY_PLACEHOLDERS = {**COMMON, **PRIMARY_ONLY}
ENV_PREFIX = "LVS_"


def named(command: str) -> set[str]:
    """The placeholder names a command line uses; ValueError for a malformed one."""
    names: set[str] = set()
    for _, field, _, _ in string.Formatter().parse(command):
        if field is not None:
            # `{port!s}`, `{secret:>4}` and `{a.b}` name `port`, `secret` and `a`.
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return names


def unknown_placeholders(command: str, known: Mapping[str, str]) -> list[str]:
    """The placeholders of `command` that are not in `known`, sorted; ValueError if malformed."""
    return sorted(n for n in named(command) if n not in known)


def expand(command: str, values: Mapping[str, object]) -> str:
    """The command with its placeholders filled in (`{{` and `}}` stay literal braces)."""
    return command.format_map({k: str(v) for k, v in values.items()})


def environment(values: Mapping[str, object]) -> dict[str, str]:
    """The same values as LVS_HOST, LVS_PORT, ... for the testee's environment."""
    return {ENV_PREFIX + k.upper(): str(v) for k, v in values.items()}
