"""IPv4 header arithmetic for the impairer: which direction, the address swap, checksums.

The TUN device owns `local` (.1 of a /29). The relay on the Viewer side
connects to `primary` (.2); the relay on the Primary side listens on `local`
and sees connections from `viewer` (.3). A packet the kernel sends to the
device is written back with its addresses swapped so it arrives at the other
end as if it came from across a link:

    upstream   local -> primary   becomes   viewer  -> local
    downstream local -> viewer    becomes   primary -> local

Only the addresses change, so the TCP/UDP checksum is adjusted incrementally
(RFC 1624) instead of being recomputed over the payload.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

UPSTREAM = "upstream"  # Viewer -> Primary, the trace's v2p
DOWNSTREAM = "downstream"  # Primary -> Viewer, the trace's p2v
DIRECTIONS = (UPSTREAM, DOWNSTREAM)

TCP, UDP = 6, 17
_CHECKSUM_AT = {TCP: 16, UDP: 6}  # offset of the checksum inside the transport header


@dataclass(frozen=True)
class TunAddresses:
    """The three addresses of one packet hop, packed for quick comparison."""

    local: bytes
    primary: bytes
    viewer: bytes

    @classmethod
    def in_block(cls, network: str) -> TunAddresses:
        """.1, .2 and .3 of a /29 (a /29 so that .3 is not its broadcast address)."""
        base = ipaddress.IPv4Network(network)
        if base.prefixlen != 29:
            raise ValueError(f"a packet hop needs a /29, not {network}")
        first = base.network_address
        return cls(*(ipaddress.IPv4Address(int(first) + i).packed for i in (1, 2, 3)))

    def text(self, which: str) -> str:
        return str(ipaddress.IPv4Address(getattr(self, which)))


def direction_of(packet: bytes | bytearray, addresses: TunAddresses) -> str | None:
    """UPSTREAM, DOWNSTREAM, or None for anything this hop does not carry (IPv6, ...)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    destination = bytes(packet[16:20])
    if destination == addresses.primary:
        return UPSTREAM
    if destination == addresses.viewer:
        return DOWNSTREAM
    return None


def swap_addresses(packet: bytearray, direction: str, addresses: TunAddresses) -> None:
    """Rewrite in place: the packet now arrives at `local` from across the link."""
    source = addresses.viewer if direction == UPSTREAM else addresses.primary
    old = bytes(packet[12:20])
    packet[12:16] = source
    packet[16:20] = addresses.local
    _fix_ip_checksum(packet)
    header = (packet[0] & 0x0F) * 4
    protocol = packet[9]
    first_fragment = struct.unpack_from("!H", packet, 6)[0] & 0x1FFF == 0
    at = _CHECKSUM_AT.get(protocol)
    if at is None or not first_fragment or len(packet) < header + at + 2:
        return
    offset = header + at
    checksum = struct.unpack_from("!H", packet, offset)[0]
    if protocol == UDP and checksum == 0:
        return  # UDP without a checksum stays without one
    adjusted = adjust_checksum(checksum, old, bytes(packet[12:20]))
    if protocol == UDP and adjusted == 0:
        adjusted = 0xFFFF
    struct.pack_into("!H", packet, offset, adjusted)


def adjust_checksum(checksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over 16-bit words of old and new."""
    total = (~checksum & 0xFFFF) + (~_word_sum(old) & 0xFFFF) + _word_sum(new)
    return ~_fold(total) & 0xFFFF


def internet_checksum(data: bytes | bytearray) -> int:
    return ~_word_sum(data) & 0xFFFF


def _word_sum(data: bytes | bytearray) -> int:
    if len(data) % 2:
        data = bytes(data) + b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _fix_ip_checksum(packet: bytearray) -> None:
    header = (packet[0] & 0x0F) * 4
    packet[10:12] = b"\0\0"
    struct.pack_into("!H", packet, 10, internet_checksum(packet[:header]))


def corrupt(packet: bytearray, position: int, bit: int) -> None:
    """Flip one bit after the IP header, like a bad link: the receiver's checksum catches it."""
    header = (packet[0] & 0x0F) * 4
    if len(packet) <= header:
        return
    index = header + position % (len(packet) - header)
    packet[index] ^= 1 << (bit % 8)
