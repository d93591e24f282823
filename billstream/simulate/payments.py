"""Payment stories of newer Stripe versions: an invoice paid in parts (2025-05-28.basil), and an
upgrade gated on its payment (`payment_behavior=pending_if_incomplete`). docs/state.md says what
the reducer makes of each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from billstream.simulate import catalog, events

if TYPE_CHECKING:
    from billstream.simulate.story import Invoice, Story

DAY = 86400
PERIOD_DAYS = {"month": 30, "year": 365}
PENDING_UPDATE_EXPIRY = 23 * 3600


def invoice_payment(payment_id: str, *, invoice_id: str, amount: int, paid_at: int) -> events.Json:
    """An Invoice Payment: it names its invoice but carries no `customer`, so it routes by its
    own id (billstream's default allowlist leaves `invoice_payment.*` out for that reason)."""
    return {
        "id": payment_id,
        "object": "invoice_payment",
        "amount_paid": amount,
        "amount_requested": amount,
        "created": paid_at,
        "currency": "usd",
        "invoice": invoice_id,
        "is_default": False,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": None},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": paid_at},
    }


def pay_part(story: Story, inv: Invoice, amount: int, paid_before: int, tag: str | None) -> None:
    """One part: the payment is paid, the invoice stays open with an amount remaining."""
    payment = invoice_payment(
        story.new_id("inpay"), invoice_id=inv.id, amount=amount, paid_at=story.now
    )
    story.emit("invoice_payment.paid", payment)
    obj = story.invoice_object(inv)
    obj["amount_paid"] = paid_before + amount
    obj["amount_remaining"] = inv.amount - paid_before - amount
    story.emit("invoice.updated", obj, previous={"amount_paid": paid_before}, tag=tag)


def pay_in_parts(story: Story, inv: Invoice, tag: str | None = None) -> None:
    """Half now, the rest days later; only the last part pays the invoice (`invoice.paid`)."""
    first = inv.amount // 2
    pay_part(story, inv, first, 0, tag="paid_in_parts")
    story.wait(story.rng.randint(1, 3) * DAY)
    rest = invoice_payment(
        story.new_id("inpay"), invoice_id=inv.id, amount=inv.amount - first, paid_at=story.now
    )
    story.emit("invoice_payment.paid", rest)
    story.pay(inv, tag=tag)


def gated_upgrade(story: Story, price: catalog.Price, tag: str) -> None:
    """An upgrade whose proration fails: Stripe keeps the old items and holds the change in
    `pending_update` until the invoice is paid, or drops it after 23 hours."""
    sub = story.sub
    assert sub is not None
    start, end = story.now, story.now + PERIOD_DAYS[price.interval] * DAY
    prorated = max(0, price.unit_amount - sub.price.unit_amount // 2)
    inv = story.open_invoice("subscription_update", prorated, start, end)
    story.fail(inv, None)
    obj = story.sub_object(sub)
    item = {"object": "subscription_item", "price": events.price_object(price), "quantity": 1}
    obj["pending_update"] = {
        "billing_cycle_anchor": None,
        "expires_at": story.now + PENDING_UPDATE_EXPIRY,
        "subscription_items": [item],
        "trial_end": None,
        "trial_from_plan": None,
    }
    story.emit("customer.subscription.updated", obj, previous={"pending_update": None})
    if story.rng.random() < 0.7:
        story.wait(story.rng.randint(600, 6 * 3600))
        story.pay(inv)
        story.update_sub(
            price=price,
            period_start=start,
            period_end=end,
            event_type="customer.subscription.pending_update_applied",
            tag=tag,
        )
        return
    story.wait(PENDING_UPDATE_EXPIRY)
    story.emit(
        "customer.subscription.pending_update_expired",
        story.sub_object(sub),
        tag="pending_update_expired",
    )
    story.close_invoice(inv, "void")  # the simulation closes the unpaid proration invoice
