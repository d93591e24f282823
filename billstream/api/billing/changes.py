"""Plan changes: what kind a requested change is, and the proration policy's Stripe parameters.

Pure: the subscription as Stripe returned it and the catalog in, a `Change` out, whose
`update_params` / `preview_params` are exactly what is sent (docs/proration-policy.md):

- upgrade (higher tier, any interval): now, prorated and invoiced at once
  (`proration_behavior=always_invoice`, `payment_behavior=error_if_incomplete`: a declined
  card leaves the plan as it was and answers 402); withdraws any scheduled downgrade.
- downgrade (lower tier, same interval): at the period end, nothing prorated: sets
  `metadata.pending_plan`, which the worker's reconciliation applies before the period ends;
  a downgrade to the default plan that has no price is `cancel_at_period_end=true` instead.
- interval switch (same tier): now, like an upgrade; Stripe restarts the billing period and
  credits the unused part of the old one on the same invoice (a yearly → monthly credit larger
  than the invoice stays on the customer's balance for the next invoices; nothing is refunded).
- no-op (same plan and interval): nothing, or withdraws a scheduled downgrade/cancellation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billstream.api.billing.catalog import Catalog
from billstream.api.billing.errors import BillingError, conflict, unprocessable
from billstream.api.billing.plans import PlanBook

KINDS = ("upgrade", "downgrade", "interval_switch", "noop")
LIVE = frozenset({"trialing", "active", "past_due"})
NOW_KINDS = frozenset({"upgrade", "interval_switch"})


@dataclass(frozen=True)
class Current:
    """The subscription as it stands, in billstream's terms."""

    subscription_id: str
    customer: str
    item_id: str
    price_id: str
    plan: str
    interval: str | None
    pending_plan: str | None
    cancel_at_period_end: bool
    period_end: int | None
    default_payment_method: str | None = None


def _period_end(subscription: Mapping[str, Any], item: Mapping[str, Any]) -> int | None:
    value = item.get("current_period_end", subscription.get("current_period_end"))
    return value if isinstance(value, int) else None


def current_of(subscription: Mapping[str, Any], book: PlanBook) -> Current:
    """The item that carries the plan (highest tier among mapped items); 409 if none or ended."""
    status = subscription.get("status")
    if status not in LIVE:
        raise conflict("subscription_not_changeable", f"the subscription is {status}")
    items = list((subscription.get("items") or {}).get("data") or [])
    mapped = [(item, book.plan_of_price(item.get("price") or {})) for item in items]
    planned = [(item, plan) for item, plan in mapped if plan is not None]
    if not planned:
        raise conflict("subscription_has_no_plan", "no item's price is in BILLING_PLAN_MAP")
    item, plan = max(planned, key=lambda pair: book.tier(pair[1]))
    price = item.get("price") or {}
    customer = subscription.get("customer")
    customer_id = customer.get("id") if isinstance(customer, Mapping) else customer
    pending = (subscription.get("metadata") or {}).get("pending_plan") or None
    method = subscription.get("default_payment_method")
    method_id = method.get("id") if isinstance(method, Mapping) else method
    return Current(
        subscription_id=str(subscription["id"]),
        customer=str(customer_id),
        item_id=str(item["id"]),
        price_id=str(price.get("id")),
        plan=plan,
        interval=(price.get("recurring") or {}).get("interval"),
        pending_plan=pending,
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        period_end=_period_end(subscription, item),
        default_payment_method=None if method_id is None else str(method_id),
    )


@dataclass(frozen=True)
class Change:
    kind: str
    current: Current
    plan: str
    interval: str
    price_id: str | None  # None: a downgrade to the default plan that has no price (cancel)

    @property
    def effective(self) -> str:
        return "now" if self.kind in NOW_KINDS else "period_end"

    @property
    def pending(self) -> bool:
        return self.current.pending_plan is not None or self.current.cancel_at_period_end

    def update_params(self, proration_date: int | None) -> dict[str, Any] | None:
        """The `POST /v1/subscriptions/{id}` body, or None when nothing is to change."""
        if self.kind in NOW_KINDS:
            params: dict[str, Any] = {
                "items": [{"id": self.current.item_id, "price": self.price_id}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "error_if_incomplete",
                "cancel_at_period_end": False,
                "metadata": {"pending_plan": ""},  # an empty value deletes the key
            }
            if proration_date is not None:
                params["proration_date"] = proration_date
            return params
        if self.kind == "downgrade" and self.price_id is None:
            return {
                "cancel_at_period_end": True,
                "proration_behavior": "none",
                "metadata": {"pending_plan": ""},
            }
        if self.kind == "downgrade":
            return {
                "cancel_at_period_end": False,
                "proration_behavior": "none",
                "metadata": {"pending_plan": self.plan},
            }
        if not self.pending:
            return None
        return {  # no-op: withdraw what was scheduled
            "cancel_at_period_end": False,
            "proration_behavior": "none",
            "metadata": {"pending_plan": ""},
        }

    def preview_params(self, proration_date: int) -> dict[str, Any] | None:
        """The `POST /v1/invoices/create_preview` body: the invoice now, or the next one."""
        if self.price_id is None or self.kind == "noop":
            return None
        details: dict[str, Any] = {
            "items": [{"id": self.current.item_id, "price": self.price_id}],
        }
        if self.kind in NOW_KINDS:
            details |= {"proration_behavior": "always_invoice", "proration_date": proration_date}
        else:
            details["proration_behavior"] = "none"
        return {
            "customer": self.current.customer,
            "subscription": self.current.subscription_id,
            "subscription_details": details,
        }

    def promised(self) -> dict[str, Any]:
        """The account-state fields billstream will serve once Stripe's webhook is folded."""
        current = self.current
        if self.kind in NOW_KINDS:
            return _state(self.plan, self.interval, None, False)
        if self.kind == "downgrade" and self.price_id is None:
            return _state(current.plan, current.interval, None, True)
        if self.kind == "downgrade":
            return _state(current.plan, current.interval, self.plan, False)
        return _state(current.plan, current.interval, None, False)


def _state(plan: str, interval: str | None, pending: str | None, cancel: bool) -> dict[str, Any]:
    return {
        "plan": plan,
        "interval": interval,
        "pending_plan": pending,
        "cancel_at_period_end": cancel,
    }


def classify(
    current: Current, plan: str, interval: str, catalog: Catalog, book: PlanBook
) -> Change:
    """The change from `current` to (`plan`, `interval`); 422 for what is not sold."""
    tier_from, tier_to = book.tier(current.plan), book.tier(plan)
    if tier_to < tier_from:
        if interval != current.interval:
            raise unprocessable(
                "interval", "a downgrade keeps the billing interval; switch it separately"
            )
        price = catalog.price(plan, interval)
        if price is None and plan != book.default_plan:
            raise _not_sold(plan, interval)
        return Change(
            "downgrade", current, plan, interval, None if price is None else price.price_id
        )
    if tier_to == tier_from and interval == current.interval:
        return Change("noop", current, plan, interval, current.price_id)
    price = catalog.price(plan, interval)
    if price is None:
        raise _not_sold(plan, interval)
    kind = "upgrade" if tier_to > tier_from else "interval_switch"
    return Change(kind, current, plan, interval, price.price_id)


def _not_sold(plan: str, interval: str) -> BillingError:
    if interval == "year":
        return unprocessable("interval", f"{plan} has no yearly price")
    return unprocessable("plan", f"{plan} has no {interval}ly price in the catalog")
