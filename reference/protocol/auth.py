"""Challenge-response authentication (AUTH-1, AUTH-5).

    response = lower-case hex( HMAC-SHA256( key = UTF-8(secret),
                                            msg = ASCII("LVS-AUTH:" + nonce) ) )

where `nonce` is the exact text of the AUTH_CHALLENGE `nonce` field: 32
lower-case hex digits (16 random bytes), fresh for every connection.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

NONCE_BYTES = 16
AUTH_DOMAIN = "LVS-AUTH:"
_NONCE = re.compile(r"[0-9a-f]{32}")
_RESPONSE = re.compile(r"[0-9a-f]{64}")


def new_nonce(random_bytes: Callable[[int], bytes]) -> str:
    """A fresh nonce from the caller's randomness source (os.urandom in the peers)."""
    return random_bytes(NONCE_BYTES).hex()


def is_valid_nonce(nonce: str) -> bool:
    return _NONCE.fullmatch(nonce) is not None


def compute_response(secret: str, nonce: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), (AUTH_DOMAIN + nonce).encode("ascii"), hashlib.sha256)
    return mac.hexdigest()


def verify_response(secret: str, nonce: str, response: str) -> bool:
    """Constant-time comparison; a response of the wrong shape is simply wrong."""
    if _RESPONSE.fullmatch(response) is None:
        return False
    return hmac.compare_digest(compute_response(secret, nonce), response)


class NonceBook:
    """Nonces a Primary has issued; each can be answered once (AUTH-5).

    A connection's nonce is consumed by its first AUTH, right or wrong, so a
    replayed answer fails on that connection and on every later one.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._open: dict[str, None] = {}

    def issue(self, random_bytes: Callable[[int], bytes]) -> str:
        nonce = new_nonce(random_bytes)
        while nonce in self._open:
            nonce = new_nonce(random_bytes)
        self._open[nonce] = None
        if len(self._open) > self.capacity:
            # Oldest first: an abandoned handshake must not keep memory forever.
            del self._open[next(iter(self._open))]
        return nonce

    def consume(self, secret: str, nonce: str, response: str) -> bool:
        if nonce not in self._open:
            return False
        del self._open[nonce]
        return verify_response(secret, nonce, response)

    def answers_any(self, secret: str, response: str) -> bool:
        """Whether `response` answers some nonce still held, consuming none: the flaw of
        the test-only switch `nonce_not_consumed` (AUTH-5 broken), never the real check."""
        return any(verify_response(secret, nonce, response) for nonce in self._open)

    def discard(self, nonce: str) -> None:
        self._open.pop(nonce, None)
