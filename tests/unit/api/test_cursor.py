"""Opaque keyset cursors: every id survives the round trip; anything else is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billstream.api import cursor

IDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=255).filter(
    lambda s: "\x7f" not in s
)


@given(IDS)
def test_round_trip(customer_id: str) -> None:
    token = cursor.encode(customer_id)
    assert token.isascii()
    assert "=" not in token
    assert cursor.decode(token) == customer_id


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "é",
        "A" * 401,
        base64.urlsafe_b64encode(b"cus_1").decode(),  # no version prefix
        base64.urlsafe_b64encode(b"a1:").decode(),  # empty id
        base64.urlsafe_b64encode(b"a1:cus\x00").decode(),  # control character
        base64.urlsafe_b64encode(b"a1:\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(token)
