"""The plans billstream sells, as Stripe prices: built from the API, served from memory.

A plan of BILLING_PLAN_ORDER is listed only with an active, recurring (interval_count 1),
monthly or yearly price of an active product, found by `lookup_key` first and by price id
second (BILLING_PLAN_MAP). The catalog is loaded at start-up, re-read every
BILLING_CATALOG_REFRESH_SECONDS and as soon as a `price.*` / `product.*` event passes through
`stripe.events` (`catalog_events.py`); requests never wait for Stripe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from billstream.api.billing.plans import INTERVALS, PlanBook

# Stripe accepts at most 10 values in the Prices API `lookup_keys` filter.
MAX_LOOKUP_KEYS = 10
MAX_BACKOFF_SECONDS = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogPrice:
    plan: str
    interval: str
    price_id: str
    lookup_key: str | None
    unit_amount: int | None
    currency: str
    product: str
    product_name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "price_id": self.price_id,
            "lookup_key": self.lookup_key,
            "unit_amount": self.unit_amount,
            "currency": self.currency,
            "product": self.product,
            "product_name": self.product_name,
        }


@dataclass(frozen=True)
class Catalog:
    prices: tuple[CatalogPrice, ...]  # in plan order, then interval order
    refreshed_at: int

    def price(self, plan: str, interval: str) -> CatalogPrice | None:
        for price in self.prices:
            if price.plan == plan and price.interval == interval:
                return price
        return None

    def has_plan(self, plan: str) -> bool:
        return any(price.plan == plan for price in self.prices)

    def to_json(self, book: PlanBook) -> dict[str, Any]:
        plans = []
        for plan in book.order:
            prices = {p.interval: p.to_json() for p in self.prices if p.plan == plan}
            if prices:
                plans.append({"plan": plan, "tier": book.tier(plan), "prices": prices})
        intervals = [i for i in INTERVALS if any(p.interval == i for p in self.prices)]
        return {
            "plans": plans,
            "intervals": intervals,
            "yearly_available": "year" in intervals,
            "refreshed_at": self.refreshed_at,
        }


def _usable(price: Mapping[str, Any]) -> str | None:
    """The interval a price can be sold for, or None (inactive, one-off, odd interval)."""
    recurring = price.get("recurring") or {}
    product = price.get("product")
    if isinstance(product, Mapping) and (not product.get("active", True) or product.get("deleted")):
        return None
    interval = recurring.get("interval")
    if not price.get("active") or interval not in INTERVALS:
        return None
    return str(interval) if recurring.get("interval_count", 1) == 1 else None


def _entry(plan: str, interval: str, price: Mapping[str, Any]) -> CatalogPrice:
    product = price.get("product")
    product_id = product.get("id") if isinstance(product, Mapping) else product
    name = product.get("name") if isinstance(product, Mapping) else None
    return CatalogPrice(
        plan=plan,
        interval=interval,
        price_id=str(price["id"]),
        lookup_key=price.get("lookup_key"),
        unit_amount=price.get("unit_amount"),
        currency=str(price.get("currency", "")),
        product=str(product_id or ""),
        product_name=name,
    )


def _by_lookup_key(client: stripe.StripeClient, keys: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), MAX_LOOKUP_KEYS):
        chunk = keys[start : start + MAX_LOOKUP_KEYS]
        page = client.v1.prices.list(
            {"lookup_keys": chunk, "active": True, "expand": ["data.product"], "limit": 100}
        )
        for price in page.data:
            data = price.to_dict()
            key = data.get("lookup_key")
            if key in chunk:
                found[key] = data
    return found


def _by_id(client: stripe.StripeClient, price_id: str) -> dict[str, Any] | None:
    try:
        return client.v1.prices.retrieve(price_id, {"expand": ["product"]}).to_dict()
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:  # a mapped price that does not exist is simply not sold
            return None
        raise


def load_catalog(client: stripe.StripeClient, book: PlanBook) -> Catalog:
    """Read every mapped price from Stripe (sync: run it in a thread)."""
    all_lookup = [k for plan in book.order for k in book.keys_for(plan)[0]]
    by_lookup = _by_lookup_key(client, all_lookup) if all_lookup else {}
    entries: list[CatalogPrice] = []
    for plan in book.order:
        lookup_keys, price_ids = book.keys_for(plan)
        chosen: dict[str, CatalogPrice] = {}
        candidates = [by_lookup.get(key) for key in lookup_keys]
        for price in candidates:  # lookup keys win over price ids
            interval = None if price is None else _usable(price)
            if price is not None and interval is not None and interval not in chosen:
                chosen[interval] = _entry(plan, interval, price)
        for price_id in price_ids:
            if all(interval in chosen for interval in INTERVALS):
                break
            price = _by_id(client, price_id)
            interval = None if price is None else _usable(price)
            if price is not None and interval is not None and interval not in chosen:
                chosen[interval] = _entry(plan, interval, price)
        entries.extend(chosen[i] for i in INTERVALS if i in chosen)
    return Catalog(tuple(entries), int(time.time()))


class CatalogCache:
    """The current catalog; `invalidate()` makes `keep_fresh` re-read it at once."""

    def __init__(self, load: Callable[[], Awaitable[Catalog]]) -> None:
        self._load = load
        self.current: Catalog | None = None
        self._stale = asyncio.Event()
        self.refreshes = 0

    def invalidate(self) -> None:
        self._stale.set()

    async def refresh(self) -> Catalog:
        self._stale.clear()
        catalog = await self._load()
        self.current = catalog
        self.refreshes += 1
        log.info("billing catalog: %d prices", len(catalog.prices))
        return catalog

    async def keep_fresh(self, interval: float) -> None:
        """Load now (retrying with backoff), then on every invalidation or `interval`."""
        delay = 0.5
        while True:
            try:
                await self.refresh()
                delay = 0.5
            except Exception as error:  # Stripe down: keep the last catalog, try again
                reason = getattr(error, "error", None) or type(error).__name__
                log.warning(
                    "billing catalog refresh failed (%s); retrying in %.1f s", reason, delay
                )
                await asyncio.sleep(delay)
                delay = min(MAX_BACKOFF_SECONDS, delay * 2)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), interval)
