"""Same-second ties: which of two updates of one subscription with equal `created` is newer.

Stripe's `created` has 1-second granularity, so several updates often share a second and the
delivery order is no clue. Rules, first that decides wins (docs/state.md, "Same-second ties"):
a replay of an event already seen at that second changes nothing; a refetch answer is
the truth as of its fetch; endings are terminal; an update's `data.previous_attributes`
names the state it came from; the lifecycle orders some events and statuses. Otherwise the
later delivery wins, and with STRIPE_API_KEY set the worker asks for a refetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from billstream.processors.parsing import Envelope
from billstream.processors.statuses import is_terminal
from billstream.tables.state import SubscriptionState

CREATED = "customer.subscription.created"
REFETCH_SOURCE = "refetch"
# Every `resolution` of billstream_ordering_ties_total (bounded, exported at 0).
RESOLUTIONS = (
    "identical",
    "replayed",
    "refetched",
    "terminal",
    "lifecycle",
    "previous_attributes",
    "refetch_requested",
    "later_delivery",
)
# A subscription that had a trial or an incomplete first payment leaves it for good within
# that second: these statuses come before the other live ones (docs/state.md).
_EARLIER = {"incomplete": 0, "trialing": 1}
_MAX_IDS = 8  # ids remembered per second: bounded state, whatever a burst sends


class Tie(NamedTuple):
    incoming_wins: bool
    resolution: str


def is_refetch(event: Envelope) -> bool:
    """A synthetic update the resolver built from the subscription fetched from Stripe."""
    return event.raw is not None and event.raw.get("billstream_source") == REFETCH_SOURCE


def prior_of(event: Envelope) -> tuple[tuple[str, str | bool | None], ...]:
    """The tracked fields of the update's `data.previous_attributes` (status, cancel flag,
    price), as (field, value) pairs; empty when it shows none of them or none at all."""
    raw = event.raw
    data = raw.get("data") if raw is not None else None
    previous = data.get("previous_attributes") if isinstance(data, Mapping) else None
    if not isinstance(previous, Mapping) or not previous:
        return ()
    pairs: list[tuple[str, str | bool | None]] = []
    status = previous.get("status")
    if isinstance(status, str):
        pairs.append(("status", status))
    cancel = previous.get("cancel_at_period_end")
    if isinstance(cancel, bool):
        pairs.append(("cancel_at_period_end", cancel))
    price = _previous_price(previous)
    if price is not None:
        pairs.append(("price", price))
    return tuple(pairs)


def _previous_price(previous: Mapping[str, Any]) -> str | None:
    items = previous.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], Mapping):
        price = data[0].get("price")
        if isinstance(price, Mapping):
            # As the record keeps it (processors/plans.py): the lookup key, else the id.
            key = price.get("lookup_key") or price.get("id")
            return key if isinstance(key, str) else None
    plan = previous.get("plan")
    if isinstance(plan, Mapping) and isinstance(plan.get("id"), str):
        return str(plan["id"])
    return None


def _values(record: SubscriptionState) -> dict[str, str | bool | None]:
    return {
        "status": record.status,
        "cancel_at_period_end": record.cancel_at_period_end,
        "price": record.price,
    }


def _came_from(later: SubscriptionState, earlier: SubscriptionState) -> bool:
    """`later`'s previous attributes are `earlier`'s values: `later` followed `earlier`."""
    if not later.prior:
        return False
    values = _values(earlier)
    return all(values[name] == value for name, value in later.prior)


def _same(a: SubscriptionState, b: SubscriptionState) -> bool:
    return (
        a.status == b.status
        and a.plan == b.plan
        and a.price == b.price
        and a.interval == b.interval
        and a.current_period_end == b.current_period_end
        and a.cancel_at_period_end == b.cancel_at_period_end
        and a.pending_plan == b.pending_plan
        and a.deleted == b.deleted
    )


def resolve_tie(
    current: SubscriptionState, incoming: SubscriptionState, event_id: str, refetch: bool
) -> Tie:
    """Whether `incoming` (same `created` as `current`) replaces it, and by which rule."""
    if event_id in current.applied_ids:
        return Tie(False, "replayed")
    if incoming.refetched != current.refetched:
        return Tie(incoming.refetched, "refetched")
    if _same(current, incoming):
        return Tie(False, "identical")
    if is_terminal(current) != is_terminal(incoming):
        return Tie(is_terminal(incoming), "terminal")
    # Stripe's own word on where an update came from outranks the lifecycle's general order
    # (an active subscription can be put back on trial, with previous_attributes saying so).
    after, before = _came_from(incoming, current), _came_from(current, incoming)
    if after != before:
        return Tie(after, "previous_attributes")
    lifecycle = _lifecycle(current, incoming)
    if lifecycle is not None:
        return Tie(lifecycle, "lifecycle")
    return Tie(True, "refetch_requested" if refetch else "later_delivery")


def _lifecycle(current: SubscriptionState, incoming: SubscriptionState) -> bool | None:
    """Whether `incoming` is later by Stripe's lifecycle; None when it does not say."""
    if current.deleted != incoming.deleted:
        return incoming.deleted  # customer.subscription.deleted is a subscription's last event
    if current.first != incoming.first:
        return current.first  # customer.subscription.created is its first
    rank_current = _EARLIER.get(current.status)
    rank_incoming = _EARLIER.get(incoming.status)
    if rank_current == rank_incoming:
        return None
    if rank_incoming is None:
        return True
    if rank_current is None:
        return False
    return rank_incoming > rank_current


def seen_at_second(current: SubscriptionState, event_id: str) -> tuple[str, ...]:
    """`current.applied_ids` with `event_id`, sorted (order-independent) and bounded."""
    if event_id in current.applied_ids:
        return current.applied_ids
    return tuple(sorted((*current.applied_ids, event_id)))[-_MAX_IDS:]
