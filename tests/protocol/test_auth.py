from __future__ import annotations

import hashlib
import hmac
import random

from reference.protocol.auth import NonceBook, compute_response, verify_response


def test_response_is_hmac_sha256_of_the_documented_bytes() -> None:
    nonce = "00112233445566778899aabbccddeeff"
    expected = hmac.new(b"s3cret", b"LVS-AUTH:" + nonce.encode(), hashlib.sha256).hexdigest()
    assert compute_response("s3cret", nonce) == expected
    assert verify_response("s3cret", nonce, expected)
    assert not verify_response("other", nonce, expected)
    assert not verify_response("s3cret", nonce, expected.upper())
    assert not verify_response("s3cret", nonce, "zz")


def test_nonces_are_fresh_and_single_use() -> None:
    book = NonceBook()
    rng = random.Random(3)
    first, second = book.issue(rng.randbytes), book.issue(rng.randbytes)
    assert first != second and len(first) == 32
    answer = compute_response("k", first)
    assert book.consume("k", first, answer)
    assert not book.consume("k", first, answer)  # AUTH-5: replay fails
    assert not book.consume("k", second, answer)  # an answer for another nonce fails


def test_a_wrong_answer_burns_the_nonce() -> None:
    book = NonceBook()
    nonce = book.issue(random.Random(1).randbytes)
    assert not book.consume("k", nonce, "0" * 64)
    assert not book.consume("k", nonce, compute_response("k", nonce))


def test_abandoned_nonces_are_bounded() -> None:
    book = NonceBook(capacity=4)
    rng = random.Random(2)
    issued = [book.issue(rng.randbytes) for _ in range(10)]
    assert not book.consume("k", issued[0], compute_response("k", issued[0]))
    assert book.consume("k", issued[-1], compute_response("k", issued[-1]))


def test_the_flawed_check_of_nonce_not_consumed_takes_any_held_nonces_answer() -> None:
    """The switch's check (AUTH-5 broken): an answer to another held nonce passes, again and
    again; one to a nonce the book no longer holds does not."""
    book = NonceBook()
    rng = random.Random(4)
    first, _second = book.issue(rng.randbytes), book.issue(rng.randbytes)
    answer = compute_response("k", first)
    assert book.answers_any("k", answer) and book.answers_any("k", answer)
    assert not book.answers_any("k", "0" * 64)
    book.discard(first)
    assert not book.answers_any("k", answer)
