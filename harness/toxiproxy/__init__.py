"""An embedded, API-compatible Toxiproxy 2.x, and the launcher that picks real or embedded.

See docs/toxiproxy.md for how the choice is made and where the embedded server
behaves differently from Shopify's.
"""

from harness.toxiproxy.launcher import (
    ToxiproxyServer,
    toxiproxy_client,
    toxiproxy_server,
)
from harness.toxiproxy.server import EmbeddedToxiproxy

__all__ = ["EmbeddedToxiproxy", "ToxiproxyServer", "toxiproxy_client", "toxiproxy_server"]
