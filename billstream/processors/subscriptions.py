"""Subscription rules: one record per subscription, stale events ignored, endings absorbing."""

from __future__ import annotations

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.invoices import settle_subscription
from billstream.processors.ordering import (
    CREATED,
    is_refetch,
    prior_of,
    resolve_tie,
    seen_at_second,
)
from billstream.processors.parsing import (
    Envelope,
    opt_bool,
    opt_mapping,
    opt_str,
    req_str,
)
from billstream.processors.plans import resolve_pricing
from billstream.processors.shapes import subscription_period_end
from billstream.processors.statuses import ENDING, is_terminal
from billstream.tables.state import CustomerState, SubscriptionState, evolve

DELETED = "customer.subscription.deleted"
RULE_TYPES = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        DELETED,
        "customer.subscription.paused",
        "customer.subscription.resumed",
        # A payment-gated change: the object shows the items as they are now (docs/state.md).
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
    }
)


def read_subscription(
    event: Envelope, config: ReducerConfig, known: SubscriptionState | None = None
) -> tuple[SubscriptionState, bool]:
    """The subscription as this event shows it, and whether its price was in the plan map.

    Every version's shape reads alike (processors/shapes.py). An object that shows no items at
    all (nor a legacy plan) is a payload that left them out, not a subscription without any:
    its price and, unless shown on the subscription, its period end are kept from `known`, the
    record so far. A field missing from the payload is not a field cleared.
    """
    obj = event.obj
    pricing = resolve_pricing(obj, config)
    period_end = subscription_period_end(obj, pricing.item_period_end)
    if known is not None and not pricing.shown:
        pricing = pricing._replace(
            plan=known.plan, price=known.price, interval=known.interval, known=True
        )
        if period_end is None:
            period_end = known.current_period_end
    record = SubscriptionState(
        id=req_str(obj, "id"),
        status=req_str(obj, "status"),
        plan=pricing.plan,
        last_event_created=event.created,
        price=pricing.price,
        interval=pricing.interval,
        current_period_end=period_end,
        cancel_at_period_end=opt_bool(obj, "cancel_at_period_end"),
        pending_plan=opt_str(opt_mapping(obj, "metadata"), "pending_plan"),
        deleted=event.type == DELETED,
        applied_ids=(event.id,),
        prior=prior_of(event),
        first=event.type == CREATED,
        refetched=is_refetch(event),
    )
    return record, pricing.known


def supersedes(incoming: SubscriptionState, current: SubscriptionState) -> bool:
    """Whether `incoming` replaces `current`.

    Newer-or-equal `created` wins (Stripe's `created` has 1-second granularity, so ties apply).
    An ending for good (deleted, canceled, incomplete_expired) wins over any live record and is
    never undone by a later event, so no delivery order can resurrect a subscription.
    """
    if is_terminal(current):
        return is_terminal(incoming) and incoming.last_event_created >= current.last_event_created
    return is_terminal(incoming) or incoming.last_event_created >= current.last_event_created


def apply_subscription_event(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """Store the subscription unless stale, then lose the episodes its ending closes."""
    current = state.subscriptions.get(req_str(event.obj, "id"))
    incoming, price_known = read_subscription(event, config, current)
    ending = incoming.deleted or incoming.status in ENDING
    ended_at = current.ended_at if current is not None else None
    if ending:
        ended_at = event.created if ended_at is None else max(ended_at, event.created)
    if current is not None and incoming.last_event_created == current.last_event_created:
        wins = _decide_tie(state, current, incoming, event, config, out)
        ids = seen_at_second(current, event.id)
        current, incoming = _with_ids(current, ids), _with_ids(incoming, ids)
    else:
        wins = current is None or supersedes(incoming, current)
    if current is not None and not wins:
        out.append(fx.Stale(incoming.id))
        # A stale event still tells when the subscription ended (for invoice episodes).
        record = with_ending(current, current.deleted or incoming.deleted, ended_at)
    else:
        if not price_known:
            out.append(fx.UnknownPrice(incoming.id, incoming.price))
        was_deleted = current is not None and current.deleted
        record = with_ending(incoming, incoming.deleted or was_deleted, ended_at)
    state.subscriptions[record.id] = record
    settle_subscription(state, record.id, event.created, out)


def _decide_tie(
    state: CustomerState,
    current: SubscriptionState,
    incoming: SubscriptionState,
    event: Envelope,
    config: ReducerConfig,
    out: list[fx.Effect],
) -> bool:
    """Resolve a same-second tie (processors/ordering.py), counted; ask for a refetch when
    no rule decides and refetching is on."""
    tie = resolve_tie(current, incoming, event.id, config.refetch_ties)
    out.append(fx.OrderingTie(tie.resolution))
    if tie.resolution == "refetch_requested":
        out.append(fx.SubscriptionRefetch(state.customer_id, incoming.id, event.created))
    return tie.incoming_wins


def _with_ids(record: SubscriptionState, ids: tuple[str, ...]) -> SubscriptionState:
    return record if record.applied_ids == ids else evolve(record, applied_ids=ids)


def with_ending(
    record: SubscriptionState, deleted: bool, ended_at: int | None
) -> SubscriptionState:
    """`record` with these ending fields; `record` itself when it has them already."""
    if record.deleted == deleted and record.ended_at == ended_at:
        return record
    return evolve(record, deleted=deleted, ended_at=ended_at)
