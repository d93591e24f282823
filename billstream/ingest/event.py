"""The few fields of a verified body that routing needs; the body itself is published unchanged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from billstream.routing import record_headers, routing_key

# Stripe types look like "invoice.payment_failed"; anything else is one label, not a new series.
_TYPE_LABEL = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+){0,5}")
_TYPE_LABEL_MAX = 64
OTHER_TYPE = "other"


class InvalidPayload(Exception):
    """A verified body that is not a Stripe event; the message says why (safe to log)."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """What the handler needs from an event: identity, type, and its Kafka key and headers."""

    id: str
    type: str
    key: bytes
    fields: dict[str, Any]

    def headers(self, received_at_ms: int) -> list[tuple[str, bytes]]:
        return record_headers(self.fields, received_at_ms)


def parse_event(body: bytes) -> StripeEvent:
    """Parse with orjson and check the contract's shape: an object with id, type, data.object."""
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayload("body is not JSON") from None
    if not isinstance(fields, dict):
        raise InvalidPayload("body is not a JSON object")
    event_id, event_type, data = fields.get("id"), fields.get("type"), fields.get("data")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidPayload("missing or non-string id")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidPayload("missing or non-string type")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidPayload("missing data.object")
    return StripeEvent(event_id, event_type, routing_key(fields).encode(), fields)


def type_label(event_type: str) -> str:
    """A bounded metric label: well-formed Stripe type names only, everything else `other`."""
    if len(event_type) <= _TYPE_LABEL_MAX and _TYPE_LABEL.fullmatch(event_type):
        return event_type
    return OTHER_TYPE
