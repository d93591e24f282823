"""Where each Stripe API version puts the fields the rules read (docs/state.md, "API versions").

The rules never branch on the event's `api_version`: it is nullable, an account's endpoints can
use different versions, and a backfilled or replayed event keeps the version it was created
with. Each reader looks in every place some version uses, so one story folds to one state
whatever shape (or mix of shapes) it arrives in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from billstream.processors.parsing import (
    InvalidEvent,
    opt_id,
    opt_int,
    opt_list,
    opt_mapping,
    opt_str,
)


class ItemPrice(NamedTuple):
    """What one subscription item shows of its price, in any version's shape."""

    lookup_key: str | None
    price_id: str | None
    interval: str | None
    period_end: int | None


def item_price(entry: object) -> ItemPrice:
    """`items.data[]`: the `price` (2020 on), else the legacy `plan` (same id, no lookup_key).

    Since the Prices API every item carries both, the plan mirroring the price; an item of
    an older shape carries only `plan`, whose `interval` sits on the plan itself. The item's
    `current_period_end` exists from 2025-03-31.basil on.
    """
    if type(entry) is not dict and not isinstance(entry, Mapping):
        raise InvalidEvent("bad_type", "items.data[]")
    price = opt_mapping(entry, "price")
    plan = opt_mapping(entry, "plan") if not price else {}
    if price:
        lookup_key, price_id = opt_str(price, "lookup_key"), opt_str(price, "id")
        interval = opt_str(opt_mapping(price, "recurring"), "interval")
    else:
        lookup_key, price_id, interval = None, opt_str(plan, "id"), opt_str(plan, "interval")
    return ItemPrice(lookup_key, price_id, interval, opt_int(entry, "current_period_end"))


def subscription_items(subscription: Mapping[str, Any]) -> list[Any] | None:
    """The entries to price: `items.data`, else a legacy single-plan subscription's `plan`.

    None when the object shows neither, i.e. it says nothing about its price (a subscription
    always has items, so this is a payload that left them out, not one without any).
    """
    items = subscription.get("items")
    if items is not None:
        return opt_list(opt_mapping(subscription, "items"), "data")
    plan = opt_mapping(subscription, "plan")
    return [{"plan": plan}] if plan else None


def subscription_period_end(subscription: Mapping[str, Any], item_end: int | None) -> int | None:
    """`current_period_end` on the subscription (before basil), else on its items (basil on)."""
    top = opt_int(subscription, "current_period_end")
    return top if top is not None else item_end


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's subscription: `subscription` (before basil), else
    `parent.subscription_details.subscription` (basil on); None for another parent (a quote)
    or none. Either may be an id or the expanded object."""
    old_shape = opt_id(invoice, "subscription")
    if old_shape is not None:
        return old_shape
    details = opt_mapping(opt_mapping(invoice, "parent"), "subscription_details")
    return opt_id(details, "subscription")
