"""Stripe-shaped payload builders (events, customers, subscriptions, invoices), shared by the
simulator and tests so both exercise the pipeline with what Stripe really sends.

`api_version` selects the payload shape (billstream/simulate/versions.py): before 2025-03-31
(basil) the billing period sits on the subscription and an invoice names its `subscription`; from
basil on the period sits on the items and the invoice's subscription is under
`parent.subscription_details`; later versions add fields billstream ignores (`billing_mode`,
`customer_account`).
"""

from __future__ import annotations

import zlib
from typing import Any

from billstream.simulate import versions
from billstream.simulate.catalog import Price

LEGACY_API = "2024-06-20"
BASIL_API = "2025-03-31.basil"
NEWEST_API = versions.NEWEST
API_VERSIONS = versions.SUPPORTED

Json = dict[str, Any]


def event(
    event_id: str,
    event_type: str,
    obj: Json,
    created: int,
    *,
    api_version: str = NEWEST_API,
    previous_attributes: Json | None = None,
    request_id: str | None = None,
) -> Json:
    """The event envelope Stripe POSTs to a webhook endpoint."""
    data: Json = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": None},
        "type": event_type,
    }


def price_object(price: Price) -> Json:
    return {
        "id": price.id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "currency": "usd",
        "livemode": False,
        "lookup_key": price.lookup_key,
        "metadata": {},
        "nickname": None,
        "product": price.product,
        "recurring": {"interval": price.interval, "interval_count": 1, "usage_type": "licensed"},
        "type": "recurring",
        "unit_amount": price.unit_amount,
    }


def plan_object(price: Price) -> Json:
    """The legacy `plan` every subscription item still carries beside its `price` (the Prices
    API is backwards compatible with Plans: same id; the interval on the plan itself)."""
    return {
        "id": price.id,
        "object": "plan",
        "active": True,
        "amount": price.unit_amount,
        "currency": "usd",
        "interval": price.interval,
        "interval_count": 1,
        "livemode": False,
        "metadata": {},
        "nickname": None,
        "product": price.product,
        "usage_type": "licensed",
    }


def customer(customer_id: str, created: int, *, email: str, name: str) -> Json:
    return {
        "id": customer_id,
        "object": "customer",
        "balance": 0,
        "created": created,
        "currency": "usd",
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_settings": {"default_payment_method": None},
        "livemode": False,
        "metadata": {},
        "name": name,
        "tax_exempt": "none",
    }


def subscription(
    sub_id: str,
    *,
    customer_id: str,
    item_id: str,
    price: Price,
    status: str,
    created: int,
    current_period_start: int,
    current_period_end: int,
    api_version: str = NEWEST_API,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    trial_start: int | None = None,
    trial_end: int | None = None,
    pending_plan: str | None = None,
    latest_invoice: str | None = None,
) -> Json:
    """A subscription with one item; `pending_plan` goes to `metadata.pending_plan`."""
    item: Json = {
        "id": item_id,
        "object": "subscription_item",
        "created": created,
        "metadata": {},
        "plan": plan_object(price),
        "price": price_object(price),
        "quantity": 1,
        "subscription": sub_id,
    }
    obj: Json = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": current_period_start,
        "cancel_at": current_period_end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": latest_invoice,
        "livemode": False,
        "metadata": {"pending_plan": pending_plan} if pending_plan else {},
        "pause_collection": None,
        "start_date": created,
        "status": status,
        "trial_end": trial_end,
        "trial_start": trial_start,
    }
    versions.place_period(api_version, obj, item, current_period_start, current_period_end)
    versions.place_subscription_extras(api_version, obj, created)
    return obj


def invoice(
    invoice_id: str | None,
    *,
    customer_id: str,
    subscription_id: str | None,
    price: Price,
    status: str,
    billing_reason: str,
    created: int,
    period_start: int,
    period_end: int,
    amount_due: int,
    attempt_count: int = 0,
    next_payment_attempt: int | None = None,
    api_version: str = NEWEST_API,
    quote_id: str | None = None,
) -> Json:
    """An invoice of one subscription line; `invoice_id=None` is an upcoming (preview) invoice.

    `subscription_id=None` with a `quote_id`: an invoice a quote generated, with no subscription.
    """
    paid = status == "paid"
    obj: Json = {
        "object": "invoice",
        "amount_due": amount_due,
        "amount_paid": amount_due if paid else 0,
        "amount_remaining": 0 if paid else amount_due,
        "attempt_count": attempt_count,
        "attempted": attempt_count > 0,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "lines": {
            "object": "list",
            "data": [{"object": "line_item", "amount": amount_due, "pricing": {"price": price.id}}],
            "has_more": False,
        },
        "livemode": False,
        "next_payment_attempt": next_payment_attempt,
        "period_end": period_end,
        "period_start": period_start,
        "status": status,
        "total": amount_due,
    }
    if invoice_id is not None:
        obj["id"] = invoice_id
    versions.place_invoice_parent(
        api_version, obj, subscription_id=subscription_id, quote_id=quote_id, paid=paid
    )
    return obj


def checkout_session(
    session_id: str, *, customer_id: str, subscription_id: str, created: int, amount_total: int
) -> Json:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount_total,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "expires_at": created + 86400,
        "livemode": False,
        "metadata": {},
        "mode": "subscription",
        "payment_status": "paid" if amount_total else "no_payment_required",
        "status": "complete",
        "subscription": subscription_id,
    }


# Declines a simulated failure shows, most common first (Stripe's documented codes).
DECLINES = ("insufficient_funds", "generic_decline", "do_not_honor", "expired_card", "lost_card")


def decline_code(intent_id: str) -> str:
    """A decline code derived from the id: the stories' random draws stay as they were."""
    weights = (4, 3, 2, 1, 1)
    slot = zlib.crc32(intent_id.encode()) % sum(weights)
    for code, weight in zip(DECLINES, weights, strict=True):
        if slot < weight:
            return code
        slot -= weight
    raise AssertionError("unreachable")


def payment_intent(intent_id: str, *, customer_id: str, amount: int, status: str) -> Json:
    """Sent when an endpoint subscribes to payment intents; billstream's allowlist ignores them."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "currency": "usd",
        "customer": customer_id,
        "livemode": False,
        "status": status,
    }


# The summary of an `entitlements.active_entitlement_summary.updated` event lists at most this
# many entitlements; `has_more` says the Active Entitlements API has the rest.
SUMMARY_PAGE = 10


def active_entitlement(lookup_key: str) -> Json:
    """One active entitlement; ids derive from the lookup key (features are per account)."""
    return {
        "id": f"ent_test_{lookup_key}",
        "object": "entitlements.active_entitlement",
        "feature": f"feat_test_{lookup_key}",
        "livemode": False,
        "lookup_key": lookup_key,
    }


def active_entitlement_summary(customer_id: str, lookup_keys: list[str]) -> Json:
    """What Stripe sends: the first SUMMARY_PAGE entitlements, `has_more` when there are more."""
    return {
        "object": "entitlements.active_entitlement_summary",
        "customer": customer_id,
        "entitlements": {
            "object": "list",
            "data": [active_entitlement(key) for key in lookup_keys[:SUMMARY_PAGE]],
            "has_more": len(lookup_keys) > SUMMARY_PAGE,
            "url": "/v1/entitlements/active_entitlements",
        },
        "livemode": False,
    }
