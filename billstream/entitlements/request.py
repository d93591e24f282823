"""The refetch request the worker publishes when a summary says there are more entitlements.

Same shape as the ordering refetch requests (billstream.refetch_request on stripe.thin-events,
header `source: refetch`, key: the customer id). The resolver answers it with a synthetic
summary of every active entitlement (billstream/entitlements/fetch.py). The id derives from the
customer and the summary's `created`, so repeats are duplicates all the way down.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from billstream.routing import headers_for

OBJECT = "billstream.refetch_request"
RELATED_TYPE = "entitlements.active_entitlement_summary"
REASON = "entitlements_has_more"
SOURCE = "refetch"


def request_id(customer_id: str, created: int) -> str:
    """`rfq_` + 24 hex of sha256("entitlements:customer:created"): one id per summary."""
    digest = hashlib.sha256(f"entitlements:{customer_id}:{created}".encode()).hexdigest()
    return f"rfq_{digest[:24]}"


def entitlements_request(customer_id: str, created: int) -> dict[str, Any]:
    """The request object, as the resolver reads it."""
    return {
        "object": OBJECT,
        "id": request_id(customer_id, created),
        "created": created,
        "customer": customer_id,
        "related_object": {
            "id": customer_id,
            "type": RELATED_TYPE,
            "url": f"/v1/entitlements/active_entitlements?customer={customer_id}",
        },
        "reason": REASON,
    }


def request_record(
    customer_id: str, created: int, received_at_ms: int, account: str | None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key (the customer id), value and headers (the contract's, `source: refetch`)."""
    value = entitlements_request(customer_id, created)
    headers = headers_for(value["id"], OBJECT, received_at_ms, account, SOURCE)
    return customer_id.encode(), orjson.dumps(value), headers
