"""The Stripe side of a deferred downgrade: the pending plan's price, the item, one update.

Sync stripe-python calls: `reconcile.py` runs them in a thread so the worker's loop keeps going,
each through `call` (billstream/stripe_calls.py: the shared rate limit and retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe
from stripe import RequestOptions

from billstream.processors.config import ReducerConfig
from billstream.processors.statuses import LIVE
from billstream.stripe_calls import Call, direct

# Stripe accepts at most 10 values in the Prices API `lookup_keys` filter.
MAX_LOOKUP_KEYS = 10


class DowngradeError(Exception):
    """This account cannot be downgraded as it stands (configuration or subscription shape)."""


@dataclass(frozen=True)
class Downgrade:
    """One account whose pending plan is due before its period ends."""

    customer_id: str
    subscription_id: str
    plan: str | None
    pending_plan: str
    period_end: int
    interval: str | None = None
    stripe_account: str | None = None  # Connect: calls go with `Stripe-Account`

    @property
    def options(self) -> RequestOptions:
        """Stripe request options: the connected account, if any (its objects live there)."""
        if self.stripe_account is None:
            return {}
        return {"stripe_account": self.stripe_account}

    @property
    def idempotency_key(self) -> str:
        """Same subscription and period, same key: Stripe replays a retry instead of re-applying."""
        return f"billstream-downgrade-{self.subscription_id}-{self.period_end}"


def _plan_keys(config: ReducerConfig, plan: str) -> list[str]:
    return [key for key, mapped in config.plan_map.items() if mapped == plan]


def _is_price_id(key: str) -> bool:
    return key.startswith(("price_", "plan_"))


class PriceResolver:
    """Plan → price id by BILLING_PLAN_MAP in reverse: lookup keys first, then price ids."""

    def __init__(
        self, client: stripe.StripeClient, config: ReducerConfig, call: Call = direct
    ) -> None:
        self._client = client
        self._config = config
        self._call = call
        self._cache: dict[tuple[str, str | None, str | None], str] = {}

    def price_for(self, plan: str, interval: str | None, stripe_account: str | None = None) -> str:
        """The price to switch to; same billing interval as today when the plan has several.
        A connected account's prices are its own: looked up there (`Stripe-Account`)."""
        key = (plan, interval, stripe_account)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._resolve(plan, interval, stripe_account)
        return cached

    def _resolve(self, plan: str, interval: str | None, stripe_account: str | None) -> str:
        keys = _plan_keys(self._config, plan)
        lookup_keys = [key for key in keys if not _is_price_id(key)][:MAX_LOOKUP_KEYS]
        if lookup_keys:
            params = {"lookup_keys": lookup_keys, "active": True, "limit": MAX_LOOKUP_KEYS}
            options: Any = {} if stripe_account is None else {"stripe_account": stripe_account}
            page = self._call(
                lambda: self._client.v1.prices.list(params, options)  # type: ignore[arg-type]
            )
            prices = [price.to_dict() for price in page.data]
            if prices:
                return str(min(prices, key=lambda p: _preference(p, lookup_keys, interval))["id"])
        price_ids = [key for key in keys if _is_price_id(key)]
        if price_ids:
            return price_ids[0]
        found = f"no active price for lookup keys {lookup_keys}" if lookup_keys else "no key"
        raise DowngradeError(f"plan {plan!r}: {found} in BILLING_PLAN_MAP")


def _preference(
    price: Mapping[str, Any], lookup_keys: list[str], interval: str | None
) -> tuple[bool, int]:
    recurring = price.get("recurring") or {}
    key = price.get("lookup_key")
    order = lookup_keys.index(key) if key in lookup_keys else len(lookup_keys)
    return (interval is not None and recurring.get("interval") != interval, order)


def _item_plan(item: Mapping[str, Any], config: ReducerConfig) -> str | None:
    price = item.get("price") or {}
    for key in (price.get("lookup_key"), price.get("id")):
        if key is not None and key in config.plan_map:
            return config.plan_map[key]
    return None


def choose_item(subscription: Mapping[str, Any], plan: str | None, config: ReducerConfig) -> str:
    """The item carrying the plan: the only one, else the one granting the current plan."""
    items = list((subscription.get("items") or {}).get("data") or [])
    if len(items) == 1:
        return str(items[0]["id"])
    mapped = [(item, _item_plan(item, config)) for item in items]
    mapped = [(item, item_plan) for item, item_plan in mapped if item_plan is not None]
    if not mapped:
        raise DowngradeError(f"none of the {len(items)} items has a price in BILLING_PLAN_MAP")
    current = [item for item, item_plan in mapped if item_plan == plan]
    if current:
        return str(current[0]["id"])
    return str(max(mapped, key=lambda pair: config.tier(pair[1]))[0]["id"])


def apply_downgrade(
    client: stripe.StripeClient,
    resolver: PriceResolver,
    due: Downgrade,
    config: ReducerConfig,
    call: Call = direct,
) -> dict[str, Any]:
    """Switch the subscription to the pending plan's price now, without proration."""
    price = resolver.price_for(due.pending_plan, due.interval, due.stripe_account)
    subscription = call(
        lambda: client.v1.subscriptions.retrieve(due.subscription_id, options=due.options)
    ).to_dict()
    status = subscription.get("status")
    if status not in LIVE:
        raise DowngradeError(f"subscription {due.subscription_id} is {status}")
    item = choose_item(subscription, due.plan, config)
    changes: dict[str, Any] = {
        "items": [{"id": item, "price": price}],
        "proration_behavior": "none",
        "cancel_at_period_end": False,
        "metadata": {"pending_plan": ""},  # an empty value deletes the key
    }
    # The idempotency key makes a retried update (stripe_calls) a replay, never a second switch.
    updated = call(
        lambda: client.v1.subscriptions.update(
            due.subscription_id,
            changes,  # type: ignore[arg-type]
            {**due.options, "idempotency_key": due.idempotency_key},
        )
    )
    result: dict[str, Any] = updated.to_dict()
    return result
