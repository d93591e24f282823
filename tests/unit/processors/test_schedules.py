"""Subscription schedules: a next phase with another plan shows as `pending_plan`."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from billstream.processors.effects import DowngradeScheduled, ScheduleEvent
from billstream.processors.parsing import InvalidEvent
from billstream.processors.reconcile import local_account_views
from billstream.processors.schedules import METADATA, SCHEDULE, pending_plan_source
from billstream.tables.codec import decode_customer, encode_customer
from billstream.tables.state import CustomerState
from tests.support.billing_events import phase, schedule_event
from tests.support.factories import (
    MONTH,
    Json,
    business_monthly,
    pro_monthly,
    subscription_event,
)
from tests.unit.processors.support import fold, of_type, view

END = 100 + MONTH  # the subscription's period end: the downgrade phase starts there
STAMPS = ("version", "updated_by_event", "updated_by_event_type", "updated_at")


def derived(account: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in account.items() if k not in STAMPS}


def business(at: int = 100, **fields: Any) -> Json:
    return subscription_event(
        "customer.subscription.created" if at == 100 else "customer.subscription.updated",
        created=at,
        prices=[business_monthly()],
        current_period_end=END,
        **fields,
    )


def downgrade_phases() -> list[Json]:
    return [phase(business_monthly(), 100, END), phase(pro_monthly(), END)]


def scheduled(
    event_type: str = "subscription_schedule.created", at: int = 200, **fields: Any
) -> Json:
    fields.setdefault("phases", downgrade_phases())
    return schedule_event(event_type, created=at, **fields)


def test_a_schedule_with_a_lower_next_phase_is_a_scheduled_downgrade() -> None:
    state, effects = fold([business(), scheduled()])
    account = view(state)
    assert account["plan"] == "BUSINESS"
    assert account["pending_plan"] == "PRO"
    assert of_type(effects, DowngradeScheduled) == [
        DowngradeScheduled("sub_test1", "BUSINESS", "PRO")
    ]
    assert ScheduleEvent("subscription_schedule.created") in effects
    assert pending_plan_source(state) == SCHEDULE


@pytest.mark.parametrize(
    "event_type", ["subscription_schedule.released", "subscription_schedule.canceled"]
)
def test_a_released_or_canceled_schedule_clears_the_pending_plan(event_type: str) -> None:
    ended = scheduled(event_type, at=300, status=event_type.rsplit(".", 1)[1])
    state, _ = fold([business(), scheduled(), ended])
    assert view(state)["pending_plan"] is None
    assert pending_plan_source(state) is None


def test_the_phase_stripe_applied_is_no_longer_pending() -> None:
    # At the period end Stripe moves the subscription to the next phase's price itself.
    moved = subscription_event(created=END, prices=[pro_monthly()], current_period_end=END + MONTH)
    state, _ = fold([business(), scheduled(), moved])
    assert view(state)["plan"] == "PRO"
    assert view(state)["pending_plan"] is None  # even before the schedule's own update arrives


def test_every_order_of_a_schedule_downgrade_story_gives_one_state() -> None:
    story = [
        business(),
        scheduled(),
        scheduled("subscription_schedule.updated", at=250),
        subscription_event(created=END, prices=[pro_monthly()], current_period_end=END + MONTH),
        scheduled("subscription_schedule.updated", at=END, current=1),
        scheduled("subscription_schedule.released", at=END + MONTH, status="released"),
    ]
    expected, _ = fold(story)
    assert view(expected)["plan"] == "PRO"
    assert view(expected)["pending_plan"] is None
    for order in itertools.permutations(story):
        state, _ = fold(order)
        assert derived(view(state)) == derived(view(expected))
        assert state.schedules == expected.schedules


def test_every_order_of_a_withdrawn_downgrade_gives_no_pending_plan() -> None:
    story = [
        business(),
        scheduled(),
        scheduled("subscription_schedule.released", at=300, status="released"),
        business(at=300),
    ]
    for order in itertools.permutations(story):
        state, _ = fold(order)
        assert view(state)["pending_plan"] is None
        assert state.schedules["sub_sched_test1"].status == "released"


def test_an_older_live_view_never_reactivates_an_ended_schedule() -> None:
    state, _ = fold(
        [
            business(),
            scheduled("subscription_schedule.canceled", at=300, status="canceled"),
            scheduled("subscription_schedule.updated", at=400),  # newer but not an ending
        ]
    )
    assert state.schedules["sub_sched_test1"].status == "canceled"
    assert view(state)["pending_plan"] is None


def test_a_stale_schedule_update_is_ignored() -> None:
    upgrade = [phase(business_monthly(), 100, END), phase(business_monthly(), END)]
    state, _ = fold(
        [business(), scheduled(at=300, phases=upgrade), scheduled("subscription_schedule.updated")]
    )
    assert view(state)["pending_plan"] is None  # the newer view: same plan, nothing pending


def test_metadata_pending_plan_comes_first() -> None:
    state, _ = fold([business(pending_plan="FREE"), scheduled()])
    assert view(state)["pending_plan"] == "FREE"
    assert pending_plan_source(state) == METADATA


def test_phase_prices_as_ids_map_through_the_plan_map() -> None:
    pro = subscription_event(
        "customer.subscription.created", created=100, prices=[pro_monthly()], current_period_end=END
    )
    phases = [phase("price_pro_monthly", 100, END), phase("price_legacy_business", END)]
    state, effects = fold([pro, scheduled(phases=phases)])
    assert view(state)["pending_plan"] == "BUSINESS"  # an upgrade: shown, not a downgrade
    assert of_type(effects, DowngradeScheduled) == []

    unmapped = [phase("price_pro_monthly", 100, END), phase("price_not_in_map", END)]
    state, _ = fold([pro, scheduled(phases=unmapped)])
    assert view(state)["pending_plan"] is None


def test_a_not_started_schedule_has_no_pending_plan() -> None:
    state, _ = fold([business(), scheduled(status="not_started", current=None)])
    assert view(state)["pending_plan"] is None


def test_a_schedule_of_an_ended_subscription_grants_nothing() -> None:
    ended = subscription_event(
        "customer.subscription.deleted", created=300, prices=[business_monthly()]
    )
    state, _ = fold([business(), scheduled(), ended])
    assert view(state)["pending_plan"] is None


@pytest.mark.parametrize(
    "next_phase",
    [
        "not a phase",
        {"start_date": END, "items": [42]},
        {"start_date": END, "items": [{"price": 42}]},
        {"start_date": "soon", "items": []},
    ],
)
def test_a_malformed_schedule_is_invalid(next_phase: object) -> None:
    with pytest.raises(InvalidEvent):
        fold([scheduled(phases=[phase(business_monthly(), 100, END), next_phase])])


def test_schedules_survive_the_table_codec_and_old_values_decode() -> None:
    state, _ = fold([business(), scheduled()])
    decoded = decode_customer(encode_customer(state))
    assert decoded is not None
    assert decoded.schedules == state.schedules
    assert orjson.loads(encode_customer(state)) == state.to_dict()

    old = state.to_dict()
    del old["schedules"]  # a value written before schedules were stored
    assert CustomerState.from_dict(old).schedules == {}


def test_reconcile_leaves_a_schedule_downgrade_to_stripe() -> None:
    by_schedule, _ = fold([business(), scheduled()])
    by_metadata, _ = fold([business(pending_plan="PRO", customer="cus_meta")])
    table = {
        b"cus_test1": encode_customer(by_schedule),
        b"cus_meta": encode_customer(by_metadata),
    }
    views = list(local_account_views(table))
    assert [v["customer_id"] for v in views] == ["cus_meta"]
