"""The pure reducer `apply(state, event, config) -> (state, effects)`: no I/O, no wall clock.

Rules live by name: subscriptions.py, invoices.py, payments.py, schedules.py, plans.py,
account.py (docs/state.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.processors.account import publish_if_changed
from billstream.processors.config import ReducerConfig
from billstream.processors.declines import RULE_TYPES as DECLINE_RULES
from billstream.processors.declines import apply_payment_failure
from billstream.processors.entitlements import RULE_TYPES as ENTITLEMENT_RULES
from billstream.processors.entitlements import apply_entitlements_event, pending_fetch
from billstream.processors.episodes import track_episodes
from billstream.processors.invoices import PAID as INVOICE_PAID
from billstream.processors.invoices import RULE_TYPES as INVOICE_RULES
from billstream.processors.invoices import apply_invoice_event, is_buried, prune_closed
from billstream.processors.parsing import Envelope, InvalidEvent, read_envelope
from billstream.processors.payments import NOTICES, apply_payment_event
from billstream.processors.schedules import PREFIX as SCHEDULE_PREFIX
from billstream.processors.schedules import RULE_TYPES as SCHEDULE_RULES
from billstream.processors.schedules import SCHEDULE_EVENTS, apply_schedule_event
from billstream.processors.subscriptions import RULE_TYPES as SUBSCRIPTION_RULES
from billstream.processors.subscriptions import apply_subscription_event
from billstream.routing import connected_account, routing_key
from billstream.tables.state import CustomerState

__all__ = ["CustomerState", "InvalidEvent", "ReducerConfig", "apply"]

Rule = Callable[[CustomerState, Envelope, ReducerConfig, list[fx.Effect]], None]

SUBSCRIPTION_PREFIX = "customer.subscription."
# Bounded label values for stripe_subscription_event_total{type}.
SUBSCRIPTION_LABELS = frozenset(
    f"{SUBSCRIPTION_PREFIX}{name}"
    for name in (
        "created",
        "updated",
        "deleted",
        "paused",
        "resumed",
        "trial_will_end",
        "pending_update_applied",
        "pending_update_expired",
    )
)


# Effects are frozen values: one instance per label serves every event.
_SUBSCRIPTION_EVENTS = {label: fx.SubscriptionEvent(label) for label in SUBSCRIPTION_LABELS}
OTHER_SUBSCRIPTION_LABEL = "other"
# Every `type` of stripe_subscription_event_total: the handled types, and "other" for the rest.
SUBSCRIPTION_EVENT_TYPES = (*sorted(SUBSCRIPTION_LABELS), OTHER_SUBSCRIPTION_LABEL)
_OTHER_SUBSCRIPTION_EVENT = fx.SubscriptionEvent(OTHER_SUBSCRIPTION_LABEL)
_CHECKOUT_COMPLETED = fx.CheckoutCompleted()
_OTHER_SCHEDULE_EVENT = SCHEDULE_EVENTS["other"]


def _customer_deleted(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    state.deleted = True


def _rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {"customer.deleted": _customer_deleted}
    rules.update(dict.fromkeys(SUBSCRIPTION_RULES, apply_subscription_event))
    rules.update(dict.fromkeys(INVOICE_RULES, apply_invoice_event))
    rules.update(dict.fromkeys(ENTITLEMENT_RULES, apply_entitlements_event))
    rules.update(dict.fromkeys(DECLINE_RULES, apply_payment_failure))
    # Partial payments (basil+): only an invoice paid in full closes its episodes.
    rules.update(dict.fromkeys(INVOICE_PAID, apply_payment_event))
    rules.update(dict.fromkeys(SCHEDULE_RULES, apply_schedule_event))
    return rules


RULES = _rules()
# The rules of an invoice object (data.object.id is the invoice id): a buried invoice skips them.
_INVOICE_EVENTS = INVOICE_RULES | INVOICE_PAID


def apply(
    state: CustomerState | None, event: Mapping[str, Any], config: ReducerConfig
) -> tuple[CustomerState, list[fx.Effect]]:
    """Fold one Stripe event into the customer's state; InvalidEvent if it is malformed."""
    envelope = read_envelope(event)
    if state is not None and envelope.id in state.seen:
        duplicate: list[fx.Effect] = [fx.Duplicate(envelope.id)]
        again = pending_fetch(state, envelope)  # a request lost in a crash is asked again
        if again is not None:
            duplicate.append(again)
        return state, duplicate
    if state is not None:
        new = state.clone()
    else:  # (account, customer): the key's parts; a connected account's state names it
        account = connected_account(event.get("account"), config.platform_account)
        new = CustomerState(routing_key(event), stripe_account=account)
    effects: list[fx.Effect] = []
    event_type = envelope.type
    if event_type.startswith(SUBSCRIPTION_PREFIX):
        effects.append(_SUBSCRIPTION_EVENTS.get(event_type, _OTHER_SUBSCRIPTION_EVENT))
    elif event_type == "checkout.session.completed":
        effects.append(_CHECKOUT_COMPLETED)
    elif event_type.startswith(SCHEDULE_PREFIX):
        effects.append(SCHEDULE_EVENTS.get(event_type, _OTHER_SCHEDULE_EVENT))
    elif (notice := NOTICES.get(event_type)) is not None:
        effects.append(notice)
    rule = RULES.get(event_type)
    if rule is not None and event_type in _INVOICE_EVENTS and is_buried(new, envelope):
        rule = None  # a replay of a long-closed invoice: remembered, nothing else
    if rule is not None:
        rule(new, envelope, config, effects)
        track_episodes(state, new, effects)
    _remember(new, envelope, config)
    if rule is not None:
        publish_if_changed(new, envelope, config, effects)
    return new, effects


def _remember(state: CustomerState, event: Envelope, config: ReducerConfig) -> None:
    """Record the event id; forget ids and closed invoices past their retention horizons."""
    seen, created = state.seen, event.created
    seen[event.id] = created
    if created > state.newest_created:
        state.newest_created = created
    horizon = state.newest_created - config.dedup_retention_seconds
    if min(seen.values()) < horizon:
        state.seen = {i: c for i, c in seen.items() if c >= horizon}
    prune_closed(state, horizon, state.newest_created - config.closed_invoice_retention_seconds)
