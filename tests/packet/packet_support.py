"""Packet-device tests need CAP_NET_ADMIN and /dev/net/tun; without them they skip, saying so."""

from __future__ import annotations

import pytest

from harness.packet.backends import userspace

USERSPACE = userspace()
needs_tun = pytest.mark.skipif(
    not USERSPACE.available, reason=f"userspace packet backend unavailable: {USERSPACE.detail}"
)
