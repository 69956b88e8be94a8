"""One module per requirement group of the catalogue; importing this registers every monitor."""

from harness.checks.monitors import (  # noqa: F401
    epoch,
    evt,
    key,
    legacy_viewer,
    snap_viewer,
    state,
    ver_viewer,
)
