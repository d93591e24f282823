"""Builders of the newer billing payloads: partial payments, invoice payments, pending updates
and subscription schedules (shapes from Stripe's API reference, cited in docs/state.md).

They extend `tests.support.factories` (same ids, catalogue and `created`-first style)::

    part = partial_invoice_event("invoice.payment_succeeded", created=200, amount_paid=1000)
    phases = [phase(business_monthly(), 0, 1_000), phase(pro_monthly(), 1_000)]
    sched = schedule_event("subscription_schedule.created", created=100, phases=phases)
"""

from __future__ import annotations

from typing import Any

from tests.support.factories import (
    CUSTOMER,
    INVOICE,
    MONTH,
    SUBSCRIPTION,
    Json,
    event,
    invoice_event,
    next_id,
    subscription_event,
)

SCHEDULE = "sub_sched_test1"
CLOVER = "2025-09-30.clover"


def partial_invoice_event(
    event_type: str,
    *,
    created: int,
    amount_due: int = 2900,
    amount_paid: int,
    **fields: Any,
) -> Json:
    """An invoice event whose invoice is paid in part: still `open`, `amount_remaining` > 0."""
    payload = invoice_event(
        event_type, created=created, amount_due=amount_due, status="open", **fields
    )
    obj = payload["data"]["object"]
    obj["amount_paid"] = amount_paid
    obj["amount_remaining"] = amount_due - amount_paid
    return payload


def paid_invoice_event(
    event_type: str, *, created: int, amount_due: int = 2900, **fields: Any
) -> Json:
    """An invoice event of a fully paid invoice in the basil shape (`amount_remaining` 0)."""
    payload = invoice_event(
        event_type, created=created, amount_due=amount_due, status="paid", shape="basil", **fields
    )
    payload["data"]["object"]["amount_remaining"] = 0
    return payload


def invoice_payment_event(
    *,
    created: int,
    invoice_id: str = INVOICE,
    amount_paid: int = 1000,
    amount_requested: int | None = None,
    event_id: str | None = None,
) -> Json:
    """`invoice_payment.paid`: the Invoice Payment object has no `customer` field."""
    obj: Json = {
        "id": next_id("inpay"),
        "object": "invoice_payment",
        "amount_paid": amount_paid,
        "amount_requested": amount_paid if amount_requested is None else amount_requested,
        "created": created,
        "currency": "usd",
        "invoice": invoice_id,
        "is_default": False,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": next_id("pi")},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": created},
    }
    return event("invoice_payment.paid", obj, created=created, event_id=event_id)


def pending_update_event(
    event_type: str = "customer.subscription.updated",
    *,
    created: int,
    pending_prices: list[Json],
    expires_at: int | None = None,
    **fields: Any,
) -> Json:
    """A subscription event whose object carries a `pending_update` (its items: the old ones)."""
    payload = subscription_event(event_type, created=created, **fields)
    payload["data"]["object"]["pending_update"] = {
        "billing_cycle_anchor": None,
        "expires_at": created + 23 * 3600 if expires_at is None else expires_at,
        "subscription_items": [
            {"id": next_id("si"), "object": "subscription_item", "price": p, "quantity": 1}
            for p in pending_prices
        ],
        "trial_end": None,
        "trial_from_plan": None,
    }
    return payload


def phase(price: Json | str, start: int, end: int | None = None) -> Json:
    """One schedule phase; `price` is an expanded price or (as webhooks send it) a price id."""
    return {
        "start_date": start,
        "end_date": start + MONTH if end is None else end,
        "items": [{"price": price, "quantity": 1, "metadata": {}}],
        "proration_behavior": "none",
    }


def schedule(
    *,
    schedule_id: str = SCHEDULE,
    customer: str = CUSTOMER,
    sub_id: str | None = SUBSCRIPTION,
    status: str = "active",
    phases: list[Json],
    current: int | None = 0,
    created: int = 0,
) -> Json:
    """A `subscription_schedule`; `current` is the index of the current phase (None: none).

    Released schedules name their subscription in `released_subscription` instead.
    """
    current_phase = (
        None
        if current is None or status != "active"
        else {
            "start_date": phases[current]["start_date"],
            "end_date": phases[current]["end_date"],
        }
    )
    released = status == "released"
    return {
        "id": schedule_id,
        "object": "subscription_schedule",
        "canceled_at": created if status == "canceled" else None,
        "completed_at": created if status == "completed" else None,
        "created": created,
        "current_phase": current_phase,
        "customer": customer,
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "phases": phases,
        "released_at": created if released else None,
        "released_subscription": sub_id if released else None,
        "status": status,
        "subscription": None if released else sub_id,
    }


def schedule_event(
    event_type: str = "subscription_schedule.updated",
    *,
    created: int,
    event_id: str | None = None,
    **fields: Any,
) -> Json:
    """A `subscription_schedule.*` event; `fields` are those of `schedule()`."""
    fields.setdefault("created", created)
    return event(
        event_type, schedule(**fields), created=created, event_id=event_id, api_version=CLOVER
    )
