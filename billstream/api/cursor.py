"""Opaque keyset cursors: the last customer id (GET /accounts) or transition version served
(GET /accounts/{id}/transitions), base64url-encoded with a prefix naming the kind."""

from __future__ import annotations

import base64
import binascii
import re

PREFIX = "a1:"  # format version: lets the cursor change shape without misreading old ones
VERSION_PREFIX = "t1:"  # a transitions page: the last version served
# Ids are at most 255 characters of up to 4 UTF-8 bytes: base64 of prefix + 1020 bytes.
MAX_CURSOR = 4 * ((len(PREFIX) + 255 * 4 + 2) // 3)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidCursor(ValueError):
    """The `after` value is not a cursor this API issued."""


NOT_A_CURSOR = "not a cursor from a previous page's `next`"


def _encode(prefix: str, payload: str) -> str:
    return base64.urlsafe_b64encode((prefix + payload).encode()).decode().rstrip("=")


def _decode(cursor: str, prefix: str, max_length: int) -> str:
    """The payload after `prefix` in `cursor`; InvalidCursor for anything else."""
    if not cursor or len(cursor) > max_length or not cursor.isascii():
        raise InvalidCursor(NOT_A_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(NOT_A_CURSOR) from None
    payload = raw.removeprefix(prefix)
    if raw == payload or not payload:
        raise InvalidCursor(NOT_A_CURSOR)
    return payload


def encode(customer_id: str) -> str:
    return _encode(PREFIX, customer_id)


def decode(cursor: str) -> str:
    """The customer id in `cursor`; raises InvalidCursor for anything else."""
    customer_id = _decode(cursor, PREFIX, MAX_CURSOR)
    if _CONTROL.search(customer_id):
        raise InvalidCursor(NOT_A_CURSOR)
    return customer_id


def encode_version(version: int) -> str:
    return _encode(VERSION_PREFIX, str(version))


def decode_version(cursor: str) -> int:
    """The transition version in `cursor`; raises InvalidCursor for anything else (an accounts
    cursor included: the prefixes differ)."""
    digits = _decode(cursor, VERSION_PREFIX, 40)
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise InvalidCursor(NOT_A_CURSOR)
    return int(digits)
