"""Refetch requests: what the worker asks the resolver to fetch from Stripe's API.

One shape for every reason (entitlements beyond a summary's first page, a same-second
subscription tie): a `billstream.refetch_request` on stripe.thin-events, key the customer id,
header `source: refetch`. Ids derive from a deterministic seed, so repeated requests, and the
synthetic events that answer them, end as duplicates.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from billstream.routing import headers_for

OBJECT = "billstream.refetch_request"
SOURCE = "refetch"
SUBSCRIPTION_TIE = "same_second_tie"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"


def request_id(seed: str) -> str:
    """`rfq_` + 24 hex of sha256(seed)."""
    return f"rfq_{hashlib.sha256(seed.encode()).hexdigest()[:24]}"


def refetch_request(
    seed: str, created: int, customer_id: str, related_object: dict[str, str], reason: str
) -> dict[str, Any]:
    """The request object, as the resolver reads it."""
    return {
        "object": OBJECT,
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
    headers = headers_for(value["id"], OBJECT, received_at_ms, account, SOURCE)
    return str(value["customer"]).encode(), orjson.dumps(value), headers
