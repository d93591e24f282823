"""What the contract can carry: string lengths, integer ranges and record sizes, defined once.

The worker dead-letters an event whose effect would exceed them, the read model's columns are
sized by them, and the api quarantines whatever still slips past; so a `200 queued` always ends
served or dead-lettered with a reason (docs/security.md, "Limits").
Sources: Stripe guarantees object ids never exceed 255 characters (docs.stripe.com/upgrades,
backward-compatible changes) and caps metadata values at 500 (docs.stripe.com/api/metadata);
a feature's lookup key "may be up to 80 characters" (docs.stripe.com/api/entitlements/feature).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ID_MAX_CHARS = 255
METADATA_VALUE_MAX_CHARS = 500
TEXT_MAX_CHARS = 255  # every other string: plans, statuses, intervals, event types
FEATURE_KEY_MAX_CHARS = 80  # an entitlement feature's lookup_key
# Stripe documents no cap on a customer's active entitlements; this is billstream's, so that one
# account state stays a small record (1,000 x 80 characters is at most ~82 KB of JSON).
FEATURES_MAX = 1000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1  # SQL BIGINT; JSON parsers read larger numbers as floats or not at all
INT32_MAX = 2**31 - 1  # SQL INTEGER (an episode's attempt count)
# The Unix seconds a calendar date exists for (years 1 to 9999): an episode's opening is filed
# under its UTC month and week, which no later year has.
CALENDAR_SECONDS_MIN = -62_135_596_800
CALENDAR_SECONDS_MAX = 253_402_300_799

# Room for the key, headers and Kafka's record and batch framing beyond the body itself.
RECORD_HEADROOM_BYTES = 16 * 1024

# The account-state string fields and their limits (characters, as SQL VARCHAR counts them).
ACCOUNT_STRING_LIMITS: dict[str, int] = {
    "customer_id": ID_MAX_CHARS,
    "plan": TEXT_MAX_CHARS,
    "interval": TEXT_MAX_CHARS,
    "subscription_id": ID_MAX_CHARS,
    "subscription_status": TEXT_MAX_CHARS,
    "payment_state": TEXT_MAX_CHARS,
    "pending_plan": METADATA_VALUE_MAX_CHARS,  # metadata.pending_plan, or a schedule's plan
    "updated_by_event": ID_MAX_CHARS,
    "updated_by_event_type": TEXT_MAX_CHARS,
}
ACCOUNT_INTEGER_FIELDS = ("current_period_end", "version", "updated_at")
# The account-state list fields: (most items, characters per item).
ACCOUNT_LIST_LIMITS: dict[str, tuple[int, int]] = {
    "features": (FEATURES_MAX, FEATURE_KEY_MAX_CHARS),
}

# The invoice-episode fields (billing.invoice-episodes) and their limits.
EPISODE_ID_FIELDS = ("invoice_id", "customer_id")  # path segments and log fields: no controls
EPISODE_STRING_LIMITS: dict[str, int] = {
    "subscription_id": ID_MAX_CHARS,
    "decline_code": TEXT_MAX_CHARS,
    "plan": TEXT_MAX_CHARS,
}
EPISODE_TIME_FIELDS = ("opened_at", "closed_at")

# Bounded reasons (DLQ `error` header, billstream_dlq_total{reason}).
TOO_LONG = "too_long"
OUT_OF_RANGE = "out_of_range"
BAD_CHARACTER = "bad_character"
REASONS = (TOO_LONG, OUT_OF_RANGE, BAD_CHARACTER)

# Ids are URL path segments and log fields: no control characters.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class LimitExceeded(ValueError):
    """A value the contract cannot carry; `reason` is one of REASONS, `field` names it."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(f"{reason}: {field}")
        self.reason = reason
        self.field = field


def record_bytes(max_body: int) -> int:
    """The Kafka record size (`message.max.bytes`) that carries a body of `max_body` bytes."""
    return max_body + RECORD_HEADROOM_BYTES


def in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def check_text(field: str, value: str, limit: int) -> None:
    """No longer than `limit` characters, and no NUL (PostgreSQL text cannot hold it)."""
    if len(value) > limit:
        raise LimitExceeded(TOO_LONG, field)
    if "\x00" in value:
        raise LimitExceeded(BAD_CHARACTER, field)


def check_account(account: Mapping[str, Any]) -> None:
    """Raise LimitExceeded for the first account-state field the contract cannot carry."""
    for field, limit in ACCOUNT_STRING_LIMITS.items():
        value = account.get(field)
        if value is not None:
            check_text(field, value, limit)
    customer_id = account.get("customer_id")
    if customer_id is not None and CONTROL_CHARACTERS.search(customer_id):
        raise LimitExceeded(BAD_CHARACTER, "customer_id")
    for field in ACCOUNT_INTEGER_FIELDS:
        value = account.get(field)
        if value is not None and not in_int64(value):
            raise LimitExceeded(OUT_OF_RANGE, field)
    for field, (most, chars) in ACCOUNT_LIST_LIMITS.items():
        items = account.get(field) or ()
        if len(items) > most:
            raise LimitExceeded(TOO_LONG, field)
        for item in items:
            check_text(field, item, chars)
            # Feature keys are query values (GET /accounts?feature=) and log fields.
            if CONTROL_CHARACTERS.search(item):
                raise LimitExceeded(BAD_CHARACTER, field)


def check_episode(episode: Mapping[str, Any]) -> None:
    """Raise LimitExceeded for the first invoice-episode field the read model cannot store."""
    for field in EPISODE_ID_FIELDS:
        value = episode[field]
        check_text(field, value, ID_MAX_CHARS)
        if not value or CONTROL_CHARACTERS.search(value):
            raise LimitExceeded(BAD_CHARACTER, field)
    for field, limit in EPISODE_STRING_LIMITS.items():
        value = episode.get(field)
        if value is not None:
            check_text(field, value, limit)
    for field in EPISODE_TIME_FIELDS:
        value = episode.get(field)
        if value is not None and not CALENDAR_SECONDS_MIN <= value <= CALENDAR_SECONDS_MAX:
            raise LimitExceeded(OUT_OF_RANGE, field)
    if not 0 <= episode.get("attempts", 0) <= INT32_MAX:
        raise LimitExceeded(OUT_OF_RANGE, "attempts")
    if not in_int64(episode["version"]):
        raise LimitExceeded(OUT_OF_RANGE, "version")
