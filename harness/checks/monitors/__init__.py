"""One module per requirement group of the catalogue; importing this registers every monitor."""

from harness.checks.monitors import (  # noqa: F401
    auth,
    epoch,
    evt,
    frame,
    hb,
    key,
    legacy,
    neg,
    recon,
    snap,
    state,
    ver,
    wd,
)
