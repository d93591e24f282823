"""Refetch requests and the synthetic events that answer them: the one definition.

Ids derive from a deterministic seed, so repeated requests, and the synthetic events that
answer them, end as duplicates.

The worker publishes a request to stripe.thin-events when it needs Stripe's current copy of an
object (an entitlements summary with more pages; an ambiguous same-second subscription update);
the resolver fetches it and publishes a synthetic event to stripe.events with `source:
refetch`. Both sides import this module, so they agree on the request's fields and on the
event the reducer folds (docs/DESIGN.md, "Refetch requests").

Request (JSON, key: the customer id, header `source: refetch`):
    {"object": "billstream.refetch_request", "id": "rfq_<hex>", "created": <unix seconds>,
     "customer": "cus_…", "related_object": {"id": "sub_…", "type": "subscription",
     "url": "/v1/subscriptions/sub_…"}, "reason": "…", "event_type": "…" (optional)}
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from billstream.routing import headers_for

REQUEST_OBJECT = "billstream.refetch_request"
REQUEST_PREFIX = "rfq_"
SOURCE = "refetch"
SUBSCRIPTION_TIE = "same_second_tie"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"

# The event type a refetched object is folded as, when the request names none.
DEFAULT_EVENT_TYPES = {
    "subscription": SUBSCRIPTION_UPDATED,
    "invoice": "invoice.updated",
    "customer": "customer.updated",
    "subscription_schedule": "subscription_schedule.updated",
}


def request_id(seed: str) -> str:
    """`rfq_` + 24 hex of sha256(seed)."""
    return REQUEST_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:24]


def refetch_request(
    seed: str, created: int, customer_id: str, related_object: dict[str, str], reason: str
) -> dict[str, Any]:
    """The request object, as the resolver reads it."""
    return {
        "object": REQUEST_OBJECT,
        "id": request_id(seed),
        "created": created,
        "customer": customer_id,
        "related_object": related_object,
        "reason": reason,
    }


def subscription_tie_request(
    customer_id: str, subscription_id: str, created: int
) -> dict[str, Any]:
    """Fetch the subscription: the answer is an authoritative update at `created`."""
    value = refetch_request(
        f"subscription:{customer_id}:{subscription_id}:{created}",
        created,
        customer_id,
        {
            "id": subscription_id,
            "type": "subscription",
            "url": f"/v1/subscriptions/{subscription_id}",
        },
        SUBSCRIPTION_TIE,
    )
    value["event_type"] = SUBSCRIPTION_UPDATED
    return value


def request_record(
    value: dict[str, Any], received_at_ms: int, account: str | None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key (the customer id), value and headers (the contract's, `source: refetch`)."""
    headers = headers_for(value["id"], REQUEST_OBJECT, received_at_ms, account, SOURCE)
    return str(value["customer"]).encode(), orjson.dumps(value), headers


def synthetic_event_id(request_id: str) -> str:
    """`evt_` + the request id without its `rfq_` prefix: a repeated request is a duplicate."""
    return "evt_" + request_id.removeprefix(REQUEST_PREFIX)


def event_type_for(request: dict[str, Any]) -> str | None:
    """The request's `event_type`, else the default for its related object's type."""
    named = request.get("event_type")
    if isinstance(named, str) and named:
        return named
    related = request.get("related_object") or {}
    return DEFAULT_EVENT_TYPES.get(str(related.get("type")))


def refetch_event(
    request: dict[str, Any],
    fetched: dict[str, Any],
    *,
    api_version: str,
    account: str | None = None,
) -> dict[str, Any]:
    """The synthetic v1 event for `request`, carrying the object Stripe returned, at its `created`.

    Raises ValueError when the request names no event type and its object type has no default.
    """
    event_type = event_type_for(request)
    if event_type is None:
        raise ValueError("refetch request without event_type for an object type with no default")
    event: dict[str, Any] = {
        "id": synthetic_event_id(str(request["id"])),
        "object": "event",
        "type": event_type,
        "created": int(request["created"]),
        "api_version": api_version,
        "data": {"object": fetched},
        "billstream_source": SOURCE,
        "livemode": bool(fetched.get("livemode", False)),
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
    }
    if account:
        event["account"] = account
    return event
