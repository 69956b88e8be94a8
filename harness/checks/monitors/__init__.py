"""One module per requirement group of the catalogue; importing this registers every monitor."""

from harness.checks.monitors import epoch, hb, key, recon, wd  # noqa: F401
