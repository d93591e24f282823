"""Price → plan: BILLING_PLAN_MAP by `lookup_key` first, then price id; highest tier wins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from billstream.processors.config import ReducerConfig
from billstream.processors.shapes import item_price, subscription_items


class Pricing(NamedTuple):
    """What a subscription's items grant; `known` False means no price was in the map.

    `shown` False: the object carried neither items nor a legacy `plan`, so it says nothing
    about the price (the caller keeps what it knew).
    """

    plan: str
    price: str | None
    interval: str | None
    item_period_end: int | None
    known: bool
    shown: bool = True


# One subscription item: (price, plan it maps to, interval, current_period_end).
_Item = tuple[str | None, str | None, str | None, int | None]


def _read_item(entry: object, config: ReducerConfig) -> _Item:
    lookup_key, price_id, interval, period_end = item_price(entry)
    plan = None if lookup_key is None else config.plan_map.get(lookup_key)
    if plan is None and price_id is not None:
        plan = config.plan_map.get(price_id)
    return lookup_key or price_id, plan, interval, period_end


def resolve_pricing(subscription: Mapping[str, Any], config: ReducerConfig) -> Pricing:
    """The plan granted by a subscription object's `items.data[]` (add-ons that map to no plan
    are ignored as long as one item maps)."""
    entries = subscription_items(subscription)
    if entries is None:
        return Pricing(config.default_plan, None, None, None, False, shown=False)
    items = [_read_item(i, config) for i in entries]
    best: _Item | None = None  # the first item of the highest tier
    best_tier = -2
    latest_end: int | None = None
    for item in items:
        _, plan, _, period_end = item
        if plan is not None and (tier := config.tier(plan)) > best_tier:
            best, best_tier = item, tier
        if period_end is not None and (latest_end is None or period_end > latest_end):
            latest_end = period_end
    if best is None:
        price, _, interval, _ = items[0] if items else (None, None, None, None)
        return Pricing(config.default_plan, price, interval, latest_end, False)
    price, plan, interval, period_end = best
    end = period_end if period_end is not None else latest_end
    return Pricing(plan or config.default_plan, price, interval, end, True)
