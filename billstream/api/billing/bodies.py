"""Request bodies of the billing routes: a JSON object of known fields, each checked.

A value of the wrong type or shape is a 400 naming the field; a plan or interval billstream
does not sell is a 422 (it is well-formed, just not in the catalog).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from billstream.api.billing.errors import BillingError, bad_field, unprocessable
from billstream.api.billing.plans import INTERVALS

# Stripe ids: a prefix, an underscore, then letters and digits (and underscores in test ids).
STRIPE_ID = re.compile(r"[A-Za-z]{1,20}_[A-Za-z0-9_]{1,200}")
USER_ID = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")  # also safe inside a Search query string
MAX_URL = 2048
MAX_TRIAL_DAYS = 730  # Stripe's limit for trial_period_days
MAX_BODY = 16 * 1024
MAX_EMAIL = 254


def parse(raw: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    if len(raw) > MAX_BODY:
        raise bad_field("body", f"at most {MAX_BODY} bytes")
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise bad_field("body", "not JSON") from None
    if not isinstance(body, dict):
        raise bad_field("body", "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_field(unknown[0], "unknown field")
    return body


def _string(body: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_field(name, "required")
        return None
    if not isinstance(value, str):
        raise bad_field(name, "must be a string")
    return value


def stripe_id(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = _string(body, name, required)
    if value is not None and not STRIPE_ID.fullmatch(value):
        raise bad_field(name, "not a Stripe id")
    return value


def path_id(name: str, value: str) -> str:
    if not STRIPE_ID.fullmatch(value):
        raise bad_field(name, "not a Stripe id")
    return value


def user_id(body: Mapping[str, Any]) -> str:
    value = _string(body, "user_id", True)
    assert value is not None
    if not USER_ID.fullmatch(value):
        raise bad_field("user_id", "1-128 of A-Z a-z 0-9 . _ : @ + -")
    return value


def email(body: Mapping[str, Any]) -> str | None:
    value = _string(body, "email", False)
    if value is not None and (
        len(value) > MAX_EMAIL or not re.fullmatch(r"[^@\s]+@[^@\s]+", value)
    ):
        raise bad_field("email", "not an email address")
    return value


def url(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = _string(body, name, required)
    if value is None:
        return None
    parts = urlsplit(value)
    if len(value) > MAX_URL or parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_field(name, "must be an absolute http(s) URL")
    return value


def plan(body: Mapping[str, Any], order: tuple[str, ...]) -> str:
    value = _string(body, "plan", True)
    assert value is not None
    if value not in order:
        raise unprocessable("plan", f"unknown plan; one of {', '.join(order)}")
    return value


def interval(body: Mapping[str, Any]) -> str | None:
    """The requested interval; None when absent (the route picks its default)."""
    value = _string(body, "interval", False)
    if value is not None and value not in INTERVALS:
        raise unprocessable("interval", "unknown interval; month or year")
    return value


def trial_days(body: Mapping[str, Any]) -> int | None:
    value = body.get("trial_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIAL_DAYS:
        raise bad_field("trial_days", f"an integer from 1 to {MAX_TRIAL_DAYS}")
    return int(value)


def timestamp(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**40:
        raise bad_field(name, "a Unix timestamp in seconds")
    return int(value)


def flag(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_field(name, "must be true or false")
    return value


__all__ = ["BillingError"]
