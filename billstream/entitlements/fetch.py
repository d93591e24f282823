"""The resolver's answer to an entitlements refetch request: every active entitlement, paged.

A summary event lists at most ten entitlements; when it says `has_more`, the worker asks
(billstream/entitlements/request.py) and this walks the Active Entitlements API
(`GET /v1/entitlements/active_entitlements?customer=...`, pages of up to 100, cursor
`starting_after`) and builds a synthetic `entitlements.active_entitlement_summary.updated`
carrying all of them with `has_more: false`, at the request's `created`. Published to
stripe.events with `source: refetch`, it supersedes the partial summary (docs/state.md,
"Entitlements"). No I/O but the client's calls, each through `call` (the rate limiter and
retries of billstream/stripe_calls.py in the resolver).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import stripe

from billstream.limits import FEATURES_MAX

SUMMARY_UPDATED = "entitlements.active_entitlement_summary.updated"
SOURCE = "refetch"
PAGE_SIZE = 100  # the most a Stripe list page holds

T = TypeVar("T")


class Call(Protocol):
    """Runs one Stripe request, e.g. `StripeCalls.call` (rate limit, retries)."""

    def __call__(self, fn: Callable[[], T], /) -> T: ...


def direct(fn: Callable[[], T]) -> T:
    """No limiter, no retries: for tools and tests."""
    return fn()


def synthetic_event_id(request_id: str) -> str:
    """`evt_refetch_` + 24 hex of sha256(request id): a repeated request is a duplicate event."""
    return f"evt_refetch_{hashlib.sha256(request_id.encode()).hexdigest()[:24]}"


def active_entitlements(
    client: stripe.StripeClient,
    customer_id: str,
    *,
    account: str | None = None,
    call: Call = direct,
    page_size: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Every active entitlement of the customer, in Stripe's order, as JSON objects.

    Stops after FEATURES_MAX + 1: the worker refuses more than the contract carries
    (`too_long`), so a larger list is dead-lettered with a reason instead of fetched forever.
    """
    service = client.v1.entitlements.active_entitlements
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"customer": customer_id, "limit": page_size}
    while True:
        page = call(functools.partial(service.list, dict(params), options))  # type: ignore[arg-type]
        items = [item.to_dict() for item in page.data]
        found.extend(items)
        if not page.has_more or not items or len(found) > FEATURES_MAX:
            return found
        params["starting_after"] = items[-1]["id"]


def summary_event(
    *,
    request_id: str,
    customer_id: str,
    created: int,
    entitlements: list[dict[str, Any]],
    account: str | None = None,
) -> dict[str, Any]:
    """The synthetic summary event: all entitlements, `has_more: false`, at `created`."""
    livemode = bool(entitlements and entitlements[0].get("livemode"))
    event: dict[str, Any] = {
        "id": synthetic_event_id(request_id),
        "object": "event",
        "api_version": stripe.api_version,
        "created": created,
        "data": {
            "object": {
                "object": "entitlements.active_entitlement_summary",
                "customer": customer_id,
                "entitlements": {
                    "object": "list",
                    "data": entitlements,
                    "has_more": False,
                    "url": "/v1/entitlements/active_entitlements",
                },
                "livemode": livemode,
            }
        },
        "livemode": livemode,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": SUMMARY_UPDATED,
        "billstream_source": SOURCE,
    }
    if account:
        event["account"] = account  # Connect: routed and headed like the original
    return event


def fetch_entitlements_event(
    client: stripe.StripeClient,
    *,
    request_id: str,
    customer_id: str,
    created: int,
    account: str | None = None,
    call: Call = direct,
) -> dict[str, Any]:
    """What the resolver publishes for an `entitlements_has_more` refetch request."""
    entitlements = active_entitlements(client, customer_id, account=account, call=call)
    return summary_event(
        request_id=request_id,
        customer_id=customer_id,
        created=created,
        entitlements=entitlements,
        account=account,
    )
