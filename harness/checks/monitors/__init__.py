"""One module per requirement group of the catalogue; importing this registers every monitor."""

from harness.checks.monitors import auth, epoch, frame, key, legacy, neg, snap, ver  # noqa: F401
