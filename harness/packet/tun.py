"""The TUN device of one packet hop: created, addressed and brought up with ioctls.

Each hop takes its own /29 out of 198.18.0.0/15 (RFC 2544's benchmarking
range, which no real network routes), chosen under a lock file so parallel
runs (xdist workers, several harnesses) never share one. The device is not
persistent: closing its file descriptor removes it, its addresses and its
route, so a crashed run leaves nothing behind in the network configuration.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import tempfile
from pathlib import Path
from typing import IO

from harness.packet.ipv4 import TunAddresses

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFMTU, SIOCSIFTXQLEN = 0x8916, 0x891C, 0x8922, 0x8943
IFF_UP = 0x1
RANGE = ipaddress.IPv4Network("198.18.0.0/15")
BLOCKS = RANGE.num_addresses // 8
# Deep enough that a burst from a fast sender waits for the reader instead of being dropped.
TX_QUEUE = 10_000


class TunError(OSError):
    """The device could not be made; the message says why (privileges, no /dev/net/tun)."""


class TunDevice:
    def __init__(self, mtu: int = 1500) -> None:
        self.mtu = mtu
        self.block, self.lock, self.network = claim_block()
        self.name = f"lvspk{self.block}"
        self.addresses = TunAddresses.in_block(self.network)
        self.fd = -1
        try:
            self.fd = open_tun(self.name)
            self._configure()
        except BaseException:
            self.close()
            raise

    def _configure(self) -> None:
        name = self.name.encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6").write_text("1")
            _ioctl(control, SIOCSIFADDR, _ifreq_address(name, self.addresses.local))
            mask = ipaddress.IPv4Network(self.network).netmask.packed
            _ioctl(control, SIOCSIFNETMASK, _ifreq_address(name, mask))
            _ioctl(control, SIOCSIFMTU, struct.pack("16si20x", name, self.mtu))
            _ioctl(control, SIOCSIFTXQLEN, struct.pack("16si20x", name, TX_QUEUE))
            flags = fcntl.ioctl(control, SIOCGIFFLAGS, struct.pack("16sH22x", name, 0))
            current = struct.unpack_from("16sH", flags)[1]
            _ioctl(control, SIOCSIFFLAGS, struct.pack("16sH22x", name, current | IFF_UP))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.lock.closed:
            self.lock.close()


def claim_block() -> tuple[int, IO[bytes], str]:
    """A /29 of 198.18.0.0/15 no other hop holds: (index, the held lock, the network)."""
    folder = Path(tempfile.gettempdir()) / "lvs-packet-blocks"
    folder.mkdir(exist_ok=True)
    first = (os.getpid() * 7919) % BLOCKS
    for step in range(BLOCKS):
        block = (first + step) % BLOCKS
        handle = (folder / f"{block}.lock").open("wb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        network = ipaddress.IPv4Network((int(RANGE.network_address) + 8 * block, 29))
        return block, handle, str(network)
    raise TunError(errno.EADDRINUSE, "every /29 of 198.18.0.0/15 is taken by a packet hop")


def open_tun(name: str) -> int:
    """A non-blocking TUN file descriptor (IPv4 packets without the 4-byte header)."""
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TunError(exc.errno, f"cannot open {TUN_PATH}: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        hint = " (needs CAP_NET_ADMIN)" if exc.errno == errno.EPERM else ""
        why = f"cannot create TUN device {name}: {exc.strerror}{hint}"
        raise TunError(exc.errno, why) from None
    return fd


def _ifreq_address(name: bytes, address: bytes) -> bytes:
    return struct.pack("16sH2s4s8x", name, socket.AF_INET, b"\0\0", address)


def _ioctl(control: socket.socket, request: int, payload: bytes) -> None:
    try:
        fcntl.ioctl(control, request, payload)
    except OSError as exc:
        raise TunError(exc.errno, f"configuring the TUN device: {exc.strerror}") from None
