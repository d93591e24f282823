"""Builders of realistic Stripe event payloads (webhook JSON, as dicts) for tests and benchmarks.

Shapes follow Stripe's API reference for `event`, `subscription` and `invoice`, in both API
generations the contract accepts:

- `period="top"` puts `current_period_end` on the subscription (API versions before basil);
  `period="items"` puts it on each `items.data[]` entry (2025-03-31.basil and later).
- `shape="old"` names an invoice's subscription in `invoice.subscription`; `shape="basil"` in
  `invoice.parent.subscription_details.subscription`.

Every builder takes the event's `created` (Unix seconds) explicitly, because ordering is what
the reducer is about. Event ids are unique per process unless `event_id` is given. Usage::

    sub = subscription_event("customer.subscription.created", created=100, status="trialing",
                             prices=[price("price_pro_m", lookup_key="pro_monthly")])
    failed = invoice_event("invoice.payment_failed", created=200, invoice_id="in_1")
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from billstream.simulate import events as simulate_events
from billstream.simulate.events import event as envelope

CUSTOMER = "cus_test1"
SUBSCRIPTION = "sub_test1"
INVOICE = "in_test1"
MONTH = 30 * 86400
BASIL = "2025-03-31.basil"
ACACIA = "2024-12-18.acacia"

Json = dict[str, Any]
PeriodShape = Literal["top", "items"]
InvoiceShape = Literal["old", "basil"]

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A fresh Stripe-looking id, e.g. `evt_000000000042`."""
    return f"{prefix}_{next(_ids):012d}"


def event(
    event_type: str,
    obj: Json,
    *,
    created: int,
    event_id: str | None = None,
    api_version: str = BASIL,
    previous_attributes: Json | None = None,
) -> Json:
    """A Stripe `event` envelope around `obj` (the simulator's builder, with a fresh id)."""
    return envelope(
        event_id or next_id("evt"),
        event_type,
        obj,
        created,
        api_version=api_version,
        previous_attributes=previous_attributes,
    )


def price(
    price_id: str = "price_pro_monthly",
    *,
    lookup_key: str | None = "pro_monthly",
    interval: str = "month",
    unit_amount: int = 2900,
) -> Json:
    """A recurring `price` object as embedded in a subscription item."""
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "currency": "usd",
        "lookup_key": lookup_key,
        "product": f"prod_{price_id}",
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
        "type": "recurring",
        "unit_amount": unit_amount,
    }


# A small catalogue matching `PLAN_MAP` (BILLING_PLAN_MAP=pro_monthly=PRO,...).
PLAN_MAP = {
    "pro_monthly": "PRO",
    "pro_yearly": "PRO",
    "business_monthly": "BUSINESS",
    "business_yearly": "BUSINESS",
    "price_legacy_business": "BUSINESS",  # mapped by price id: the price has no lookup_key
}


def pro_monthly() -> Json:
    return price("price_pro_monthly", lookup_key="pro_monthly", interval="month")


def pro_yearly() -> Json:
    return price("price_pro_yearly", lookup_key="pro_yearly", interval="year", unit_amount=29000)


def business_monthly() -> Json:
    return price("price_business_monthly", lookup_key="business_monthly", unit_amount=9900)


def business_yearly() -> Json:
    return price(
        "price_business_yearly", lookup_key="business_yearly", interval="year", unit_amount=99000
    )


def unknown_price() -> Json:
    return price("price_not_in_map", lookup_key="not_in_map", unit_amount=100)


def subscription(
    *,
    sub_id: str = SUBSCRIPTION,
    customer: str = CUSTOMER,
    status: str = "active",
    prices: list[Json] | None = None,
    current_period_end: int | None = None,
    period: PeriodShape = "top",
    cancel_at_period_end: bool = False,
    pending_plan: str | None = None,
    created: int = 0,
) -> Json:
    """A `subscription` object; one item per price (default: one PRO monthly price)."""
    prices = [price()] if prices is None else prices
    period_end = current_period_end if current_period_end is not None else created + MONTH
    items = []
    for p in prices:
        item: Json = {
            "id": next_id("si"),
            "object": "subscription_item",
            "price": p,
            "quantity": 1,
            "subscription": sub_id,
        }
        if period == "items":
            item["current_period_start"] = period_end - MONTH
            item["current_period_end"] = period_end
        items.append(item)
    obj: Json = {
        "id": sub_id,
        "object": "subscription",
        "cancel_at_period_end": cancel_at_period_end,
        "created": created,
        "currency": "usd",
        "customer": customer,
        "items": {"object": "list", "data": items, "has_more": False},
        "livemode": False,
        "metadata": {} if pending_plan is None else {"pending_plan": pending_plan},
        "status": status,
    }
    if period == "top":
        obj["current_period_start"] = period_end - MONTH
        obj["current_period_end"] = period_end
    return obj


def subscription_event(
    event_type: str = "customer.subscription.updated",
    *,
    created: int,
    event_id: str | None = None,
    **fields: Any,
) -> Json:
    """A `customer.subscription.*` event; `fields` are those of `subscription()`.

    `customer.subscription.deleted` defaults to status `canceled`, as Stripe sends it.
    """
    if event_type == "customer.subscription.deleted":
        fields.setdefault("status", "canceled")
    fields.setdefault("created", created)
    api_version = BASIL if fields.get("period") == "items" else ACACIA
    return event(
        event_type,
        subscription(**fields),
        created=created,
        event_id=event_id,
        api_version=api_version,
    )


def invoice(
    *,
    invoice_id: str | None = INVOICE,
    customer: str = CUSTOMER,
    subscription_id: str | None = SUBSCRIPTION,
    status: str = "open",
    shape: InvoiceShape = "old",
    attempt_count: int = 1,
    amount_due: int = 2900,
) -> Json:
    """An `invoice` object; `invoice_id=None` gives the id-less `invoice.upcoming` preview."""
    obj: Json = {
        "object": "invoice",
        "amount_due": amount_due,
        "amount_paid": amount_due if status == "paid" else 0,
        "attempt_count": attempt_count,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "currency": "usd",
        "customer": customer,
        "livemode": False,
        "status": status,
    }
    if invoice_id is not None:
        obj["id"] = invoice_id
    if shape == "old":
        obj["subscription"] = subscription_id
    else:
        obj["parent"] = (
            None
            if subscription_id is None
            else {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": subscription_id},
            }
        )
    return obj


# The invoice status Stripe reports with each event type.
_INVOICE_STATUS = {
    "invoice.paid": "paid",
    "invoice.payment_succeeded": "paid",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
    "invoice.created": "draft",
    "invoice.upcoming": "draft",
}


def invoice_event(
    event_type: str,
    *,
    created: int,
    event_id: str | None = None,
    **fields: Any,
) -> Json:
    """An `invoice.*` event; `fields` are those of `invoice()` (status follows the type)."""
    fields.setdefault("status", _INVOICE_STATUS.get(event_type, "open"))
    if event_type == "invoice.upcoming":
        fields["invoice_id"] = None
    api_version = BASIL if fields.get("shape") == "basil" else ACACIA
    return event(
        event_type, invoice(**fields), created=created, event_id=event_id, api_version=api_version
    )


def customer_event(
    event_type: str = "customer.deleted",
    *,
    created: int,
    customer: str = CUSTOMER,
    event_id: str | None = None,
) -> Json:
    """A `customer.*` event about the customer object itself."""
    obj: Json = {"id": customer, "object": "customer", "email": "jane@example.com"}
    if event_type == "customer.deleted":
        obj["deleted"] = True
    return event(event_type, obj, created=created, event_id=event_id)


def checkout_completed(
    *,
    created: int,
    customer: str = CUSTOMER,
    sub_id: str | None = SUBSCRIPTION,
    event_id: str | None = None,
) -> Json:
    """A `checkout.session.completed` event for a subscription checkout."""
    obj: Json = {
        "id": next_id("cs"),
        "object": "checkout.session",
        "customer": customer,
        "mode": "subscription",
        "payment_status": "paid",
        "status": "complete",
        "subscription": sub_id,
    }
    return event("checkout.session.completed", obj, created=created, event_id=event_id)


def entitlements_event(
    features: list[str], *, created: int, customer: str = CUSTOMER, event_id: str | None = None
) -> Json:
    """`entitlements.active_entitlement_summary.updated` as Stripe sends it: the first ten
    entitlements, and `has_more` when `features` has more."""
    summary = simulate_events.active_entitlement_summary(customer, features)
    return event(
        "entitlements.active_entitlement_summary.updated",
        summary,
        created=created,
        event_id=event_id,
    )
