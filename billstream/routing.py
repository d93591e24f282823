"""How a Stripe event becomes a Kafka record: its key and headers (DESIGN.md, "Topics").

Shared by ingest and backfill so both put every event of one customer on one partition, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER_EVENT_ID = "stripe-event-id"
HEADER_EVENT_TYPE = "stripe-event-type"
HEADER_RECEIVED_AT = "received-at"
HEADER_ACCOUNT = "stripe-account"
HEADER_SOURCE = "source"
HEADER_ERROR = "error"


def routing_key(event: Mapping[str, Any]) -> str:
    """The customer id of the event's object; the object id when it has no customer."""
    obj = event.get("data", {}).get("object", {})
    if not isinstance(obj, Mapping):
        return str(event.get("id", ""))
    event_type = str(event.get("type", ""))
    if event_type.startswith("customer.") and obj.get("object") == "customer":
        return _text(obj.get("id")) or str(event.get("id", ""))
    customer = obj.get("customer")
    if isinstance(customer, Mapping):  # expanded customer object
        customer = customer.get("id")
    return _text(customer) or _text(obj.get("id")) or str(event.get("id", ""))


def _text(value: Any) -> str | None:
    """Only strings are ids: a number's text depends on the JSON parser (msgspec keeps 2**64 an
    int, orjson makes it a float), so ingest and the worker would key the event differently."""
    return value if isinstance(value, str) and value else None


def record_headers(
    event: Mapping[str, Any], received_at_ms: int, source: str | None = None
) -> list[tuple[str, bytes]]:
    """Kafka headers of the contract, plus `source` (e.g. `backfill`) when given."""
    headers = [
        (HEADER_EVENT_ID, str(event.get("id", "")).encode()),
        (HEADER_EVENT_TYPE, str(event.get("type", "")).encode()),
        (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
    ]
    account = event.get("account")
    if isinstance(account, str) and account:
        headers.append((HEADER_ACCOUNT, account.encode()))
    if source:
        headers.append((HEADER_SOURCE, source.encode()))
    return headers
