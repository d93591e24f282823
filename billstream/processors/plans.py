"""Price → plan: BILLING_PLAN_MAP by `lookup_key` first, then price id; highest tier wins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import InvalidEvent, opt_int, opt_list, opt_mapping, opt_str


@dataclass(frozen=True)
class Pricing:
    """What a subscription's items grant; `known` False means no price was in the map."""

    plan: str
    price: str | None
    interval: str | None
    item_period_end: int | None
    known: bool


@dataclass(frozen=True)
class _Item:
    price: str | None
    plan: str | None
    interval: str | None
    period_end: int | None


def _read_item(entry: object, config: ReducerConfig) -> _Item:
    if not isinstance(entry, Mapping):
        raise InvalidEvent("bad_type", "items.data[]")
    price = opt_mapping(entry, "price")
    lookup_key, price_id = opt_str(price, "lookup_key"), opt_str(price, "id")
    plan = None
    for key in (lookup_key, price_id):
        if key is not None and key in config.plan_map:
            plan = config.plan_map[key]
            break
    return _Item(
        price=lookup_key or price_id,
        plan=plan,
        interval=opt_str(opt_mapping(price, "recurring"), "interval"),
        period_end=opt_int(entry, "current_period_end"),
    )


def resolve_pricing(subscription: Mapping[str, Any], config: ReducerConfig) -> Pricing:
    """The plan granted by a subscription object's `items.data[]` (add-ons that map to no plan
    are ignored as long as one item maps)."""
    items = [_read_item(i, config) for i in opt_list(opt_mapping(subscription, "items"), "data")]
    mapped = [i for i in items if i.plan is not None]
    period_ends = [i.period_end for i in items if i.period_end is not None]
    latest_end = max(period_ends) if period_ends else None
    if not mapped:
        first = items[0] if items else _Item(None, None, None, None)
        return Pricing(config.default_plan, first.price, first.interval, latest_end, known=False)
    best = max(mapped, key=lambda i: config.tier(i.plan))
    end = best.period_end if best.period_end is not None else latest_end
    return Pricing(best.plan or config.default_plan, best.price, best.interval, end, known=True)
