"""The account view derived from the aggregate: which subscription it describes, and its plan."""

from __future__ import annotations

from dataclasses import replace

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.invoices import payment_state
from billstream.processors.parsing import Envelope
from billstream.processors.statuses import is_live
from billstream.tables.state import AccountState, CustomerState, SubscriptionState


def describing_subscription(
    state: CustomerState, config: ReducerConfig
) -> SubscriptionState | None:
    """The live subscription of the highest tier; with none live, the latest-updated one.

    Ties break on the latest event, then the id, so the choice never depends on arrival order.
    """
    subscriptions = list(state.subscriptions.values())
    live = [s for s in subscriptions if is_live(s)]
    if live:
        return max(live, key=lambda s: (config.tier(s.plan), s.last_event_created, s.id))
    if subscriptions:
        return max(subscriptions, key=lambda s: (s.last_event_created, s.id))
    return None


def derive_account(state: CustomerState, config: ReducerConfig) -> AccountState:
    """The account fields as the rules define them (version fields left unset)."""
    sub = describing_subscription(state, config)
    grants = sub is not None and is_live(sub) and not state.deleted
    return AccountState(
        plan=sub.plan if sub is not None and grants else config.default_plan,
        interval=None if sub is None else sub.interval,
        subscription_id=None if sub is None else sub.id,
        subscription_status=None if sub is None else sub.status,
        payment_state=payment_state(state),
        cancel_at_period_end=sub is not None and sub.cancel_at_period_end,
        pending_plan=None if sub is None else sub.pending_plan,
        current_period_end=None if sub is None else sub.current_period_end,
        deleted=state.deleted,
    )


def scheduled_downgrade(account: AccountState | None, config: ReducerConfig) -> str | None:
    """The lower-tier `pending_plan` the account will move to, if one is scheduled."""
    if account is None or account.pending_plan is None:
        return None
    pending_tier = config.tier(account.pending_plan)
    if 0 <= pending_tier < config.tier(account.plan):
        return account.pending_plan
    return None


def publish_if_changed(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """Bump the version once and emit the view when any account field changed."""
    old = state.account
    new = derive_account(state, config)
    unstamped = (
        replace(old, version=0, updated_by_event=None, updated_by_event_type=None) if old else None
    )
    if unstamped is not None and new == replace(unstamped, updated_at=None):
        return
    state.account = replace(
        new,
        version=1 if old is None else old.version + 1,
        updated_by_event=event.id,
        updated_by_event_type=event.type,
        updated_at=event.created,
    )
    from_plan = config.default_plan if old is None else old.plan
    if new.plan != from_plan:
        out.append(fx.PlanChanged(from_plan, new.plan))
    target = scheduled_downgrade(new, config)
    was = None if old is None else (old.subscription_id, scheduled_downgrade(old, config))
    if target is not None and was != (new.subscription_id, target):
        out.append(fx.DowngradeScheduled(new.subscription_id or "", new.plan, target))
    view = state.account_view()
    assert view is not None
    out.append(fx.AccountChanged(view))
