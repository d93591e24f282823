"""The refetch request the worker publishes when a summary says there are more entitlements.

The shared shape is billstream/refetch.py. The resolver answers it with a synthetic
summary of every active entitlement (billstream/entitlements/fetch.py). The id derives from the
customer and the summary's `created`, so repeats are duplicates all the way down.
"""

from __future__ import annotations

from typing import Any

from billstream import refetch
from billstream.refetch import REQUEST_OBJECT, SOURCE, refetch_request

__all__ = ["REASON", "RELATED_TYPE", "REQUEST_OBJECT", "SOURCE", "request_id", "request_record"]

RELATED_TYPE = "entitlements.active_entitlement_summary"
REASON = "entitlements_has_more"


def request_id(customer_id: str, created: int) -> str:
    """`rfq_` + 24 hex of sha256("entitlements:customer:created"): one id per summary."""
    return refetch.request_id(f"entitlements:{customer_id}:{created}")


def entitlements_request(customer_id: str, created: int) -> dict[str, Any]:
    """The request object, as the resolver reads it."""
    return refetch_request(
        f"entitlements:{customer_id}:{created}",
        created,
        customer_id,
        {
            "id": customer_id,
            "type": RELATED_TYPE,
            "url": f"/v1/entitlements/active_entitlements?customer={customer_id}",
        },
        REASON,
    )


def request_record(
    customer_id: str, created: int, received_at_ms: int, account: str | None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key (the customer id), value and headers (the contract's, `source: refetch`)."""
    return refetch.request_record(
        entitlements_request(customer_id, created), received_at_ms, account
    )
