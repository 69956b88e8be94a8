"""One module per requirement group of the catalogue; importing this registers every monitor."""

# isort: off
from harness.checks.monitors import epoch, hb, key, recon, wd  # noqa: F401
from harness.checks.monitors import evt  # noqa: F401
from harness.checks.monitors import legacy_viewer  # noqa: F401
from harness.checks.monitors import snap_viewer  # noqa: F401
from harness.checks.monitors import state  # noqa: F401
from harness.checks.monitors import ver_viewer  # noqa: F401
# isort: on
