"""Whose rule a frame or a wire error on a tap bears on: the receiver's, or the sender's.

A tap next to a peer judges that peer (harness.checks.wire.TapSide). A rule about
how a peer *answers* input (FRAME-2, VER-3) is judged for the receiver of that
input on the tap next to the receiver; a rule about what a peer *sends*
(FRAME-1's header) is judged for the sender on the tap next to the sender, where
nothing of the harness (a frame proxy, a raw client) stands between them.
"""

from __future__ import annotations

from harness.checks.wire import Conn, TapSide
from harness.trace import P2V, V2P


def reply_direction(direction: str) -> str:
    return P2V if direction == V2P else V2P


def receiver_judged(conn: Conn, direction: str) -> bool:
    """The receiver of `direction` is the peer this tap judges."""
    return conn.judges_primary if direction == V2P else conn.judges_viewer


def sender_judged(conn: Conn, direction: str) -> bool:
    """The sender of `direction` is the peer next to this tap (nothing in between)."""
    if conn.side is TapSide.FOREIGN:
        return True
    return conn.side is (TapSide.VIEWER if direction == V2P else TapSide.PRIMARY)


def receiver_name(direction: str) -> str:
    return "Primary" if direction == V2P else "Viewer"
