"""`POST /billing/subscriptions/{id}/default-payment-method`: a customer in dunning fixes the card.

The subscription's default payment method is set, and (unless `pay_open_invoice` is false)
its latest invoice, if still open, is paid with it at once rather than waiting for Smart
Retries; a decline of that payment is a 402 with Stripe's code and the new card stays set.
The invoice's `invoice.paid` webhook then closes the dunning episode as recovered.
"""

from __future__ import annotations

from typing import Any

import stripe

from billstream.api.billing.idempotency import scoped


class NotTheCustomers(Exception):
    """The subscription belongs to another customer than the one the caller named."""


def set_default(
    client: stripe.StripeClient,
    subscription_id: str,
    payment_method: str,
    pay_open_invoice: bool,
    key: str,
    customer: str | None = None,
) -> dict[str, Any]:
    if customer is not None:
        found = client.v1.subscriptions.retrieve(subscription_id).to_dict()
        owner = found.get("customer")
        if (owner.get("id") if isinstance(owner, dict) else owner) != customer:
            raise NotTheCustomers(subscription_id)
    updated = client.v1.subscriptions.update(
        subscription_id,
        {"default_payment_method": payment_method, "expand": ["latest_invoice"]},
        {"idempotency_key": scoped(key)},
    ).to_dict()
    invoice = updated.get("latest_invoice")
    invoice = invoice if isinstance(invoice, dict) else None
    if pay_open_invoice and invoice is not None and invoice.get("status") == "open":
        invoice = client.v1.invoices.pay(
            str(invoice["id"]),
            {"payment_method": payment_method},
            {"idempotency_key": scoped(key, "pay")},
        ).to_dict()
    return {
        "subscription_id": updated["id"],
        "default_payment_method": payment_method,
        "status": updated.get("status"),
        "latest_invoice": None
        if invoice is None
        else {"id": invoice["id"], "status": invoice.get("status")},
    }
