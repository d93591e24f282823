"""The account view derived from the aggregate: which subscription it describes, and its plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.entitlements import features
from billstream.processors.invoices import payment_state
from billstream.processors.parsing import Envelope
from billstream.processors.schedules import scheduled_plan
from billstream.processors.statuses import is_live
from billstream.tables.state import AccountState, CustomerState, SubscriptionState, evolve


def describing_subscription(
    state: CustomerState, config: ReducerConfig
) -> SubscriptionState | None:
    """The live subscription of the highest tier; with none live, the latest-updated one.

    Ties break on the latest event, then the id, so the choice never depends on arrival order.
    """
    if len(state.subscriptions) == 1:  # the usual case: described whether live or not
        for only in state.subscriptions.values():
            return only
    subscriptions = list(state.subscriptions.values())
    live = [s for s in subscriptions if is_live(s)]
    if live:
        return max(live, key=lambda s: (config.tier(s.plan), s.last_event_created, s.id))
    if subscriptions:
        return max(subscriptions, key=lambda s: (s.last_event_created, s.id))
    return None


# The stamps of an account change only when one of the fields the rules derive does.
STAMPS = ("version", "updated_by_event", "updated_by_event_type", "updated_at")
DERIVED_FIELDS = tuple(f.name for f in fields(AccountState) if f.name not in STAMPS)
derived_fields: Callable[[AccountState], tuple[object, ...]] = attrgetter(*DERIVED_FIELDS)


def derive_account(state: CustomerState, config: ReducerConfig) -> AccountState:
    """The account as the rules define it (DERIVED_FIELDS), stamps not yet set."""
    sub = describing_subscription(state, config)
    payment = payment_state(state)
    if sub is None:
        return AccountState(
            plan=config.default_plan,
            payment_state=payment,
            deleted=state.deleted,
            features=features(state),
        )
    return AccountState(
        plan=sub.plan if is_live(sub) and not state.deleted else config.default_plan,
        interval=sub.interval,
        subscription_id=sub.id,
        subscription_status=sub.status,
        payment_state=payment,
        cancel_at_period_end=sub.cancel_at_period_end,
        # metadata.pending_plan first (billstream's own downgrades), then a schedule's next phase.
        pending_plan=sub.pending_plan or scheduled_plan(state, sub),
        current_period_end=sub.current_period_end,
        deleted=state.deleted,
        features=features(state),
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
    derived = derive_account(state, config)
    if old is not None and derived_fields(derived) == derived_fields(old):
        return
    new = evolve(
        derived,
        version=1 if old is None else old.version + 1,
        updated_by_event=event.id,
        updated_by_event_type=event.type,
        updated_at=event.created,
    )
    state.account = new
    from_plan = config.default_plan if old is None else old.plan
    if new.plan != from_plan:
        out.append(fx.PlanChanged(from_plan, new.plan))
    target = scheduled_downgrade(new, config)
    if target is not None and (
        old is None
        or (old.subscription_id, scheduled_downgrade(old, config)) != (new.subscription_id, target)
    ):
        out.append(fx.DowngradeScheduled(new.subscription_id or "", new.plan, target))
    view = state.account_view()
    assert view is not None
    out.append(fx.AccountChanged(view))
