"""The reference peers as testees: the command lines that certify them like a third party's.

The tests, the deviation benchmark and docs/certify.md certify `harness viewer` and
`harness primary` through these commands, so all of them exercise the same placeholders.
"""

from __future__ import annotations

import shlex
import sys

_VIEWER = (
    "{python} -m harness.cli viewer --connect {{host}}:{{port}} --secret {{secret}} "
    "--telemetry {{telemetry}} --viewer-id {{viewer_id}} --quiet"
)
_PRIMARY = (
    "{python} -m harness.cli primary --listen {{host}}:{{port}} --secret {{secret}} "
    "--width {{width}} --height {{height}} --fps {{fps}} --bitrate {{bitrate}} --gop {{gop}} "
    "--control {{control}} --quiet"
)


def reference_commands(python: str = sys.executable) -> dict[str, str]:
    """Role -> the `--command` that certifies that reference peer, run by `python`."""
    quoted = shlex.quote(python)
    return {"viewer": _VIEWER.format(python=quoted), "primary": _PRIMARY.format(python=quoted)}
