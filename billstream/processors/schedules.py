"""Subscription schedules: the plan a schedule's next phase will give, shown as `pending_plan`.

A deferred downgrade done the way Stripe recommends is a schedule whose next phase starts at
the period end with a lower price (docs/state.md, "Subscription schedules"). Stripe applies the
phase itself, so reconcile must leave such a pending plan alone (`pending_plan_source`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import (
    Envelope,
    InvalidEvent,
    opt_id,
    opt_int,
    opt_list,
    opt_mapping,
    opt_str,
    req_str,
)
from billstream.processors.statuses import is_terminal
from billstream.tables.state import CustomerState, ScheduleState, SubscriptionState

PREFIX = "subscription_schedule."
RULE_TYPES = frozenset(
    f"{PREFIX}{name}"
    for name in ("created", "updated", "released", "canceled", "completed", "aborted", "expiring")
)
# Bounded label values of stripe_subscription_schedule_event_total{type}.
SCHEDULE_EVENT_TYPES = (*sorted(RULE_TYPES), "other")
SCHEDULE_EVENTS = {label: fx.ScheduleEvent(label) for label in SCHEDULE_EVENT_TYPES}
# Stripe never reactivates a schedule in these statuses: it no longer changes the subscription.
ENDED = frozenset({"released", "canceled", "completed", "aborted"})

METADATA, SCHEDULE = "metadata", "schedule"


def _price_plan(price: object, config: ReducerConfig) -> str | None:
    """A phase item's `price` (an id, or an expanded price): `lookup_key` first, then the id."""
    if isinstance(price, str):
        return config.plan_map.get(price)
    if isinstance(price, Mapping):
        for key in (opt_str(price, "lookup_key"), opt_str(price, "id")):
            if key is not None and key in config.plan_map:
                return config.plan_map[key]
        return None
    if price is None:
        return None
    raise InvalidEvent("bad_type", "phases[].items[].price")


def phase_plan(phase: Mapping[str, Any], config: ReducerConfig) -> str | None:
    """The highest tier the phase's items map to (legacy items carry `plan`); None if none do."""
    best: str | None = None
    for item in opt_list(phase, "items"):
        if not isinstance(item, Mapping):
            raise InvalidEvent("bad_type", "phases[].items[]")
        plan = _price_plan(item.get("price"), config) or _price_plan(item.get("plan"), config)
        if plan is not None and (best is None or config.tier(plan) > config.tier(best)):
            best = plan
    return best


def _next_phase(schedule: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The phase that starts when the current one ends; None when there is none (or no current)."""
    current_end = opt_int(opt_mapping(schedule, "current_phase"), "end_date")
    if current_end is None:
        return None
    following = []
    for phase in opt_list(schedule, "phases"):
        if not isinstance(phase, Mapping):
            raise InvalidEvent("bad_type", "phases[]")
        start = opt_int(phase, "start_date")
        if start is not None and start >= current_end:
            following.append((start, phase))
    return min(following, key=lambda pair: pair[0])[1] if following else None


def read_schedule(event: Envelope, config: ReducerConfig) -> ScheduleState:
    """The schedule as this event shows it."""
    obj = event.obj
    status = req_str(obj, "status")
    subscription = opt_id(obj, "subscription") or opt_str(obj, "released_subscription")
    phase = None if status in ENDED else _next_phase(obj)
    return ScheduleState(
        id=req_str(obj, "id"),
        status=status,
        last_event_created=event.created,
        subscription_id=subscription,
        next_plan=None if phase is None else phase_plan(phase, config),
        next_phase_start=None if phase is None else opt_int(phase, "start_date"),
    )


def supersedes(incoming: ScheduleState, current: ScheduleState) -> bool:
    """Newer-or-equal wins; an ended schedule is never reactivated by any later live view."""
    newer = incoming.last_event_created >= current.last_event_created
    if current.status in ENDED:
        return incoming.status in ENDED and newer
    return incoming.status in ENDED or newer


def apply_schedule_event(
    state: CustomerState, event: Envelope, config: ReducerConfig, out: list[fx.Effect]
) -> None:
    """Store the schedule unless a newer (or ended) view of it is already stored."""
    incoming = read_schedule(event, config)
    current = state.schedules.get(incoming.id)
    if current is None or supersedes(incoming, current):
        state.schedules[incoming.id] = incoming


def scheduled_plan(state: CustomerState, subscription: SubscriptionState) -> str | None:
    """The plan an active schedule will move `subscription` to, if it is still ahead of it.

    A phase that started at or before the subscription's latest event has been applied by
    Stripe already (that event shows its price), so it is not pending any more.
    """
    if not state.schedules or is_terminal(subscription):
        return None
    found: ScheduleState | None = None
    for schedule in state.schedules.values():
        if schedule.subscription_id != subscription.id or schedule.status != "active":
            continue
        if found is None or (schedule.last_event_created, schedule.id) > (
            found.last_event_created,
            found.id,
        ):
            found = schedule
    if found is None or found.next_plan is None or found.next_plan == subscription.plan:
        return None
    start = found.next_phase_start
    if start is not None and start <= subscription.last_event_created:
        return None
    return found.next_plan


def pending_plan_source(state: CustomerState) -> str | None:
    """Where the account's `pending_plan` comes from: `schedule` (Stripe applies it), else
    `metadata` (reconcile applies it at the period end); None when there is none.

    The same precedence as the account view: `metadata.pending_plan` first, then a schedule.
    """
    account = state.account
    if account is None or account.pending_plan is None:
        return None
    subscription = state.subscriptions.get(account.subscription_id or "")
    if (
        subscription is not None
        and subscription.pending_plan is None
        and scheduled_plan(state, subscription) == account.pending_plan
    ):
        return SCHEDULE
    return METADATA
