"""One module per requirement group of the catalogue; importing this registers every monitor."""

from harness.checks.monitors import epoch, key  # noqa: F401
