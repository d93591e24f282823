"""Property tests: duplicates, delivery order, robustness and the codec, over generated histories.

A history is one customer's events: subscription events for a few subscriptions (distinct
`created` times per subscription, the case where the semantics say order must not matter),
invoice events for a few invoices (some paid only in part), subscription schedules of those
subscriptions, and events without rules. Times stay within the
de-duplication retention, so nothing is forgotten mid-history.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from billstream.processors import effects as fx
from billstream.processors.reducer import apply
from billstream.processors.schedules import pending_plan_source
from billstream.tables.state import AccountState, CustomerState
from tests.support import billing_events as b
from tests.support import factories as f
from tests.unit.processors.support import CONFIG, fold

Event = dict[str, Any]
DAY = 86400
SUBSCRIPTIONS = ("sub_a", "sub_b", "sub_c")
INVOICES = ("in_1", "in_2", "in_3")
STATUSES = (
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "paused",
    "canceled",
    "incomplete",
    "incomplete_expired",
)
SUBSCRIPTION_TYPES = tuple(
    f"customer.subscription.{name}"
    for name in (
        "created",
        "updated",
        "updated",
        "deleted",
        "paused",
        "resumed",
        "trial_will_end",
        "pending_update_applied",
        "pending_update_expired",
    )
)
INVOICE_TYPES = (
    "invoice.payment_failed",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.created",
    "invoice.finalized",
    "invoice.upcoming",
    "invoice.overdue",
    "invoice.will_be_due",
    "invoice.payment_attempt_required",
)
SCHEDULES = ("sub_sched_a", "sub_sched_b")
# The status a schedule shows with each event type (updates: mostly active).
SCHEDULE_TYPES = {
    "subscription_schedule.created": ("active", "not_started"),
    "subscription_schedule.updated": ("active", "active", "not_started"),
    "subscription_schedule.expiring": ("active",),
    "subscription_schedule.released": ("released",),
    "subscription_schedule.canceled": ("canceled",),
    "subscription_schedule.completed": ("completed",),
    "subscription_schedule.aborted": ("canceled",),
}
SCHEDULE_TYPE_ODDS = (*SCHEDULE_TYPES, "subscription_schedule.updated")
PRICES = (f.pro_monthly, f.pro_yearly, f.business_monthly, f.business_yearly, f.unknown_price)

# Each example folds a history of up to 24 events twice: 50 of them keep the file to seconds.
FAST = settings(max_examples=50, deadline=None)


@st.composite
def subscription_events(draw: st.DrawFn, created: int) -> Event:
    prices = draw(st.lists(st.sampled_from(PRICES), max_size=2))
    return f.subscription_event(
        draw(st.sampled_from(SUBSCRIPTION_TYPES)),
        created=created,
        sub_id=draw(st.sampled_from(SUBSCRIPTIONS)),
        status=draw(st.sampled_from(STATUSES)),
        prices=[make() for make in prices],
        period=draw(st.sampled_from(["top", "items"])),
        current_period_end=draw(st.integers(0, 2**31)),
        cancel_at_period_end=draw(st.booleans()),
        pending_plan=draw(st.sampled_from([None, "FREE", "PRO", "BUSINESS", "GOLD"])),
    )


@st.composite
def invoice_events(draw: st.DrawFn, created: int, owners: dict[str, str | None]) -> Event:
    invoice_id = draw(st.sampled_from(INVOICES))
    event = f.invoice_event(
        draw(st.sampled_from(INVOICE_TYPES)),
        created=created,
        invoice_id=invoice_id,
        subscription_id=owners[invoice_id],
        shape=draw(st.sampled_from(["old", "basil"])),
    )
    if event["type"] in ("invoice.paid", "invoice.payment_succeeded") and draw(st.booleans()):
        obj = event["data"]["object"]  # paid in part: still open, an amount remaining
        obj["status"], obj["amount_paid"], obj["amount_remaining"] = "open", 1000, 1900
    return event


@st.composite
def schedule_events(draw: st.DrawFn, created: int, subs: tuple[str, ...] = SUBSCRIPTIONS) -> Event:
    # Phases may start after the history ends: a pending phase, not yet applied by Stripe.
    starts = sorted(draw(st.lists(st.integers(0, 12 * DAY), min_size=2, max_size=3, unique=True)))
    ends = [*starts[1:], starts[-1] + 30 * DAY]  # phases are sequential
    phases = [
        b.phase(
            draw(st.sampled_from([make() for make in PRICES] + ["price_legacy_business"])),
            start,
            end,
        )
        for start, end in zip(starts, ends, strict=True)
    ]
    event_type = draw(st.sampled_from(SCHEDULE_TYPE_ODDS))
    return b.schedule_event(
        event_type,
        created=created,
        schedule_id=draw(st.sampled_from(SCHEDULES)),
        sub_id=draw(st.sampled_from(subs)),
        status=draw(st.sampled_from(SCHEDULE_TYPES[event_type])),
        phases=phases,
        current=draw(st.sampled_from([0, 0, None, *range(len(phases))])),
    )


@st.composite
def other_events(draw: st.DrawFn, created: int) -> Event:
    kind = draw(st.sampled_from(["customer.deleted", "customer.updated", "checkout", "ping"]))
    if kind == "checkout":
        return f.checkout_completed(created=created)
    if kind == "ping":
        return f.event("billing.meter.created", {"id": "mtr_1"}, created=created)
    return f.customer_event(kind, created=created)


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """One customer's events in created order, every `created` distinct."""
    times = draw(st.lists(st.integers(0, 6 * DAY), min_size=1, max_size=24, unique=True))
    owners = {i: draw(st.sampled_from((*SUBSCRIPTIONS, "sub_elsewhere", None))) for i in INVOICES}
    events = [
        draw(
            st.one_of(
                subscription_events(t),
                invoice_events(t, owners),
                schedule_events(t),
                other_events(t),
            )
        )
        for t in sorted(times)
    ]
    return events


@st.composite
def schedule_histories(draw: st.DrawFn) -> list[Event]:
    """One subscription and its schedules: where a schedule's next phase becomes pending_plan."""
    times = draw(st.lists(st.integers(0, 6 * DAY), min_size=1, max_size=16, unique=True))
    events = []
    for t in sorted(times):
        if draw(st.booleans()):
            event = draw(subscription_events(t))
            event["data"]["object"]["id"] = "sub_a"
            event["data"]["object"]["metadata"] = {}
        else:
            event = draw(schedule_events(t, ("sub_a",)))
        events.append(event)
    return events


def order_free_view(state: CustomerState) -> AccountState | None:
    """The account fields the semantics fix regardless of delivery order (not the version)."""
    if state.account is None:
        return None
    return replace(
        state.account, version=0, updated_by_event=None, updated_by_event_type=None, updated_at=None
    )


@FAST
@given(histories(), st.data())
def test_any_delivery_order_gives_the_same_account(
    history: list[Event], data: st.DataObject
) -> None:
    in_order, _ = fold(history)
    shuffled = data.draw(st.permutations(history))

    reordered, _ = fold(shuffled)

    assert order_free_view(reordered) == order_free_view(in_order)
    assert reordered.subscriptions == in_order.subscriptions
    assert reordered.schedules == in_order.schedules


@FAST
@given(schedule_histories(), st.data())
def test_any_delivery_order_of_schedules_gives_the_same_pending_plan(
    history: list[Event], data: st.DataObject
) -> None:
    in_order, _ = fold(history)
    reordered, _ = fold(data.draw(st.permutations(history)))

    assert order_free_view(reordered) == order_free_view(in_order)
    assert reordered.schedules == in_order.schedules
    assert pending_plan_source(reordered) == pending_plan_source(in_order)


@FAST
@given(histories(), st.data())
def test_duplicates_never_change_the_result(history: list[Event], data: st.DataObject) -> None:
    # Each duplicate is redelivered some time after its original: after history[at].
    redelivered: dict[int, list[Event]] = {}
    for _ in range(data.draw(st.integers(1, 8))):
        original = data.draw(st.integers(0, len(history) - 1))
        at = data.draw(st.integers(original, len(history) - 1))
        redelivered.setdefault(at, []).append(copy.deepcopy(history[original]))
    delivered = []
    for index, event in enumerate(history):
        delivered += [event, *redelivered.get(index, [])]
    baseline, baseline_effects = fold(history)

    with_duplicates, effects = fold(delivered)

    assert with_duplicates.to_dict() == baseline.to_dict()
    assert [e for e in effects if not isinstance(e, fx.Duplicate)] == baseline_effects
    assert len([e for e in effects if isinstance(e, fx.Duplicate)]) == len(delivered) - len(history)


@FAST
@given(histories(), st.data())
def test_versions_count_published_changes(history: list[Event], data: st.DataObject) -> None:
    state, effects = fold(data.draw(st.permutations(history)))

    published = [e.account for e in effects if isinstance(e, fx.AccountChanged)]
    assert [a["version"] for a in published] == list(range(1, len(published) + 1))
    assert state.account_view() == (published[-1] if published else None)
    assert all(earlier != later for earlier, later in itertools.pairwise(published))


@FAST
@given(histories(), st.data())
def test_episode_funnel_balances(history: list[Event], data: st.DataObject) -> None:
    state, effects = fold(data.draw(st.permutations(history)))

    def count(kind: type[fx.Effect]) -> int:
        return sum(isinstance(e, kind) for e in effects)

    open_dunning = sum(i.dunning_since is not None for i in state.invoices.values())
    open_sca = sum(i.sca_since is not None for i in state.invoices.values())
    assert (
        count(fx.DunningEntered)
        == count(fx.DunningRecovered) + count(fx.DunningLost) + open_dunning
    )
    assert count(fx.ScaEntered) == count(fx.ScaCompleted) + count(fx.ScaLost) + open_sca
    assert all(
        e.seconds >= 0 for e in effects if isinstance(e, fx.DunningRecovered | fx.ScaCompleted)
    )


@FAST
@given(histories(), st.data())
def test_state_survives_the_codec_mid_stream(history: list[Event], data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(history)))
    head, _ = fold(history[:cut])
    restored = CustomerState.from_dict(copy.deepcopy(head.to_dict()))
    assert restored == head

    state_a, state_b = head, restored
    for event in history[cut:]:
        state_a, effects_a = apply(state_a, event, CONFIG)
        state_b, effects_b = apply(state_b, event, CONFIG)
        assert effects_a == effects_b
    assert state_a.to_dict() == state_b.to_dict()


# Optional fields Stripe may omit or null; removing any keeps an event well-formed.
OPTIONAL = (
    ("items",),
    ("metadata",),
    ("current_period_end",),
    ("cancel_at_period_end",),
    ("subscription",),
    ("parent",),
    ("customer",),
    ("items", "data", 0, "price"),
    ("items", "data", 0, "price", "lookup_key"),
    ("items", "data", 0, "price", "id"),
    ("items", "data", 0, "price", "recurring"),
    ("items", "data", 0, "current_period_end"),
)


def _drop(obj: Event, path: tuple[Any, ...]) -> None:
    target: Any = obj
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(target, dict):
        target.pop(path[-1], None)


@st.composite
def loose_events(draw: st.DrawFn) -> Event:
    """Well-formed events with any type name, status text, and optional fields missing."""
    created = draw(st.integers(0, 2**40))
    owners: dict[str, str | None] = dict.fromkeys(INVOICES, "sub_a")
    family = draw(st.sampled_from(["subscription", "invoice", "other"]))
    if family == "subscription":
        event = draw(subscription_events(created))
        types = SUBSCRIPTION_TYPES
    elif family == "invoice":
        event = draw(invoice_events(created, owners))
        # Only the upcoming-invoice preview comes without an invoice id.
        types = INVOICE_TYPES if "id" in event["data"]["object"] else ("invoice.upcoming",)
    else:
        event = draw(other_events(created))
        types = (event["type"],)
    # Any type name Stripe may add later, or another of the object's family.
    unknown = st.text(min_size=1, max_size=40).map(lambda name: f"x.{name}")
    event["type"] = draw(st.one_of(st.sampled_from(types), unknown))
    obj = event["data"]["object"]
    if "status" in obj:
        obj["status"] = draw(st.one_of(st.sampled_from(STATUSES), st.text(min_size=1, max_size=20)))
    for path in draw(st.lists(st.sampled_from(OPTIONAL), max_size=4)):
        _drop(obj, path)
    return event


@FAST
@given(st.lists(loose_events(), min_size=1, max_size=12))
def test_no_well_formed_event_raises(events: list[Event]) -> None:
    state, _ = fold(events)

    assert set(state.seen) <= {e["id"] for e in events}
    assert CustomerState.from_dict(state.to_dict()) == state
