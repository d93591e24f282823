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


def encode(customer_id: str) -> str:
    raw = (PREFIX + customer_id).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> str:
    """The customer id in `cursor`; raises InvalidCursor for anything else."""
    if not cursor or len(cursor) > MAX_CURSOR or not cursor.isascii():
        raise InvalidCursor("not a cursor from a previous page's `next`")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor from a previous page's `next`") from None
    customer_id = raw.removeprefix(PREFIX)
    if raw == customer_id or not customer_id or _CONTROL.search(customer_id):
        raise InvalidCursor("not a cursor from a previous page's `next`")
    return customer_id


def encode_version(version: int) -> str:
    raw = f"{VERSION_PREFIX}{version}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_version(cursor: str) -> int:
    """The transition version in `cursor`; raises InvalidCursor for anything else (an accounts
    cursor included: the prefixes differ)."""
    if not cursor or len(cursor) > 40 or not cursor.isascii():
        raise InvalidCursor("not a cursor from a previous page's `next`")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor from a previous page's `next`") from None
    digits = raw.removeprefix(VERSION_PREFIX)
    if raw == digits or not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise InvalidCursor("not a cursor from a previous page's `next`")
    return int(digits)
