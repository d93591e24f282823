"""The Stripe calls of a plan change: read the subscription, preview, apply (sync, in a thread)."""

from __future__ import annotations

from typing import Any

import stripe

from billstream.api.billing.changes import Change


def retrieve(client: stripe.StripeClient, subscription_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client.v1.subscriptions.retrieve(subscription_id).to_dict()
    return result


def preview_amounts(
    client: stripe.StripeClient, change: Change, proration_date: int
) -> dict[str, Any]:
    """What the customer pays now, and (a downgrade) on the first invoice at the lower plan."""
    params = change.preview_params(proration_date)
    if params is None:
        return {"amount_due_now": 0, "next_invoice_amount": None, "currency": None}
    invoice = client.v1.invoices.create_preview(params).to_dict()  # type: ignore[arg-type]
    amount = int(invoice.get("amount_due") or 0)
    currency = invoice.get("currency")
    if change.effective == "now":
        return {"amount_due_now": amount, "next_invoice_amount": None, "currency": currency}
    return {"amount_due_now": 0, "next_invoice_amount": amount, "currency": currency}


def apply(
    client: stripe.StripeClient, change: Change, proration_date: int | None, key: str
) -> dict[str, Any] | None:
    """The updated subscription, or None when the change sends nothing (a plain no-op)."""
    params = change.update_params(proration_date)
    if params is None:
        return None
    updated: dict[str, Any] = client.v1.subscriptions.update(
        change.current.subscription_id,
        params,  # type: ignore[arg-type]
        {"idempotency_key": key},
    ).to_dict()
    return updated
