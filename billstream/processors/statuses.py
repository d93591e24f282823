"""Which subscription statuses grant a plan, end dunning, or end the subscription for good."""

from __future__ import annotations

from billstream.tables.state import SubscriptionState

LIVE = frozenset({"trialing", "active", "past_due"})
# Stripe never revives these: a later event of the subscription cannot make it live again.
TERMINAL = frozenset({"canceled", "incomplete_expired"})
# The invoice's subscription ending closes its episodes as lost (DESIGN.md, "State semantics").
ENDING = TERMINAL | {"unpaid"}


def is_live(subscription: SubscriptionState) -> bool:
    return not subscription.deleted and subscription.status in LIVE


def is_terminal(subscription: SubscriptionState) -> bool:
    return subscription.deleted or subscription.status in TERMINAL
