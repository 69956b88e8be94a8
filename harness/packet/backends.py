"""Which fault backends this machine offers, and for each missing one, why.

Used by `harness doctor`, by the packet hop to pick its backend, and by the
scenario suite to skip packet-level scenarios with the reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

BACKEND_ENV = "LVS_PACKET_BACKEND"  # auto (default), userspace or netem
USERSPACE, NETEM = "userspace", "netem"


@dataclass(frozen=True)
class Backend:
    name: str
    available: bool
    detail: str  # what it is when available, why not when missing


def has_net_admin() -> bool:
    """CAP_NET_ADMIN (bit 12) in this process's effective capabilities."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 12 & 1)
    except OSError:
        pass
    return os.geteuid() == 0


@functools.cache
def userspace() -> Backend:
    from harness.packet.tun import TunDevice, TunError

    if not has_net_admin():
        return Backend(USERSPACE, False, "needs CAP_NET_ADMIN (run as root) to create a TUN device")
    try:
        device = TunDevice()
    except TunError as exc:
        return Backend(USERSPACE, False, str(exc.strerror or exc))
    device.close()
    return Backend(USERSPACE, True, "TUN device + userspace scheduler (harness/packet)")


@functools.cache
def netem() -> Backend:
    from harness.packet.tun import TunDevice, TunError

    if shutil.which("tc") is None:
        return Backend(NETEM, False, "no `tc` command (Debian: apt-get install iproute2)")
    if not has_net_admin():
        return Backend(NETEM, False, "needs CAP_NET_ADMIN (run as root)")
    try:
        device = TunDevice()
    except TunError as exc:
        return Backend(NETEM, False, f"no TUN device to probe on: {exc.strerror or exc}")
    try:
        done = subprocess.run(
            ["tc", "qdisc", "add", "dev", device.name, "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        device.close()
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[0] if done.stderr.strip() else "tc failed"
        return Backend(NETEM, False, f"kernel has no sch_netem ({why})")
    return Backend(NETEM, True, "tc netem on the TUN device's egress")


def packet_backend() -> Backend:
    """The backend a hop uses: $LVS_PACKET_BACKEND, else netem where the kernel has it."""
    wanted = os.environ.get(BACKEND_ENV, "auto")
    if wanted == USERSPACE:
        return userspace()
    if wanted == NETEM:
        return netem()
    if wanted != "auto":
        return Backend(wanted, False, f"{BACKEND_ENV}={wanted!r}: use auto, userspace or netem")
    chosen = netem()
    return chosen if chosen.available else userspace()


def packet_unavailable() -> str | None:
    """Why packet-level scenarios cannot run here, or None when they can."""
    chosen = packet_backend()
    return None if chosen.available else f"packet backend {chosen.name}: {chosen.detail}"
