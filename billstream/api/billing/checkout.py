"""Starting a subscription: a Checkout session, or an Elements subscription to confirm.

Checkout (`mode=subscription`) collects the card on Stripe's page. The Elements route creates
the subscription `incomplete` (`payment_behavior=default_incomplete`) and returns the client
secret the frontend confirms with Stripe.js; `save_default_payment_method=on_subscription`
makes the confirmed card the subscription's default, so renewals use it
(docs.stripe.com/billing/subscriptions/build-subscriptions).
"""

from __future__ import annotations

from typing import Any

import stripe


def create_session(
    client: stripe.StripeClient,
    *,
    customer: str,
    price_id: str,
    success_url: str,
    cancel_url: str,
    trial_days: int | None,
    automatic_tax: bool,
    key: str,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer,
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if trial_days is not None:
        params["subscription_data"] = {"trial_period_days": trial_days}
    if automatic_tax:
        # Stripe Tax needs the customer's address; Checkout collects it and saves it back.
        params["automatic_tax"] = {"enabled": True}
        params["customer_update"] = {"address": "auto"}
    session = client.v1.checkout.sessions.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
    found = session.to_dict()
    return {
        "id": found["id"],
        "url": found.get("url"),
        "expires_at": found.get("expires_at"),
        "customer": customer,
    }


def create_subscription(
    client: stripe.StripeClient,
    *,
    customer: str,
    price_id: str,
    trial_days: int | None,
    automatic_tax: bool,
    key: str,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "customer": customer,
        "items": [{"price": price_id}],
        "payment_behavior": "default_incomplete",
        "payment_settings": {"save_default_payment_method": "on_subscription"},
        # 2025-03-31.basil and later: the invoice's confirmation_secret replaces payment_intent.
        "expand": ["latest_invoice.confirmation_secret", "pending_setup_intent"],
    }
    if trial_days is not None:
        params["trial_period_days"] = trial_days
    if automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    created = client.v1.subscriptions.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
    return subscription_json(created.to_dict())


def subscription_json(subscription: dict[str, Any]) -> dict[str, Any]:
    """The id, status and the secret the frontend confirms: the first invoice's payment, or
    (a trial, nothing to pay yet) the setup intent that saves the card."""
    invoice = subscription.get("latest_invoice")
    secret = invoice.get("confirmation_secret") if isinstance(invoice, dict) else None
    setup = subscription.get("pending_setup_intent")
    intent, client_secret = None, None
    if isinstance(secret, dict) and secret.get("client_secret"):
        intent, client_secret = "payment", secret["client_secret"]
    elif isinstance(setup, dict) and setup.get("client_secret"):
        intent, client_secret = "setup", setup["client_secret"]
    return {
        "subscription_id": subscription["id"],
        "status": subscription.get("status"),
        "intent": intent,
        "client_secret": client_secret,
    }
