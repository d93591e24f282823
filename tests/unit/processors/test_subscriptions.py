"""Subscription rules: plan from the highest live subscription, statuses, staleness, endings."""

from __future__ import annotations

import pytest

from billstream.processors.effects import PlanChanged, Stale, SubscriptionEvent, UnknownPrice
from tests.support.factories import (
    business_monthly,
    pro_monthly,
    pro_yearly,
    subscription_event,
    unknown_price,
)
from tests.unit.processors.support import fold, of_type, view

CREATED = "customer.subscription.created"
UPDATED = "customer.subscription.updated"
DELETED = "customer.subscription.deleted"


@pytest.mark.parametrize("status", ["trialing", "active", "past_due"])
def test_live_statuses_grant_the_plan(status: str) -> None:
    state, _ = fold([subscription_event(CREATED, created=100, status=status)])

    assert view(state)["plan"] == "PRO"
    assert view(state)["subscription_status"] == status


@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete_expired", "paused"])
def test_non_live_statuses_fall_to_the_default_plan(status: str) -> None:
    state, _ = fold(
        [
            subscription_event(CREATED, created=100, status="active"),
            subscription_event(UPDATED, created=200, status=status),
        ]
    )

    assert view(state)["plan"] == "FREE"
    assert view(state)["subscription_status"] == status


def test_incomplete_subscription_grants_nothing_yet() -> None:
    state, effects = fold([subscription_event(CREATED, created=100, status="incomplete")])

    assert view(state)["plan"] == "FREE"
    assert of_type(effects, PlanChanged) == []


def test_trial_active_past_due_unpaid_lifecycle() -> None:
    events = [
        subscription_event(CREATED, created=100, status="trialing"),
        subscription_event(UPDATED, created=200, status="active"),
        subscription_event(UPDATED, created=300, status="past_due"),
        subscription_event(UPDATED, created=400, status="unpaid"),
    ]
    state, effects = fold(events)

    assert view(state)["plan"] == "FREE"
    assert view(state)["subscription_status"] == "unpaid"
    assert of_type(effects, PlanChanged) == [PlanChanged("FREE", "PRO"), PlanChanged("PRO", "FREE")]
    assert view(state)["version"] == 4  # each status change is a new view


def test_deleted_subscription_grants_nothing() -> None:
    state, effects = fold(
        [
            subscription_event(CREATED, created=100),
            subscription_event(DELETED, created=200),
        ]
    )

    assert view(state)["plan"] == "FREE"
    assert view(state)["subscription_status"] == "canceled"
    assert state.subscriptions["sub_test1"].deleted
    assert of_type(effects, SubscriptionEvent) == [
        SubscriptionEvent(CREATED),
        SubscriptionEvent(DELETED),
    ]


def test_pause_and_resume() -> None:
    state, _ = fold(
        [
            subscription_event(CREATED, created=100),
            subscription_event("customer.subscription.paused", created=200, status="paused"),
        ]
    )
    assert view(state)["plan"] == "FREE"

    state, _ = fold(
        [subscription_event("customer.subscription.resumed", created=300, status="active")], state
    )
    assert view(state)["plan"] == "PRO"


def test_upgrade_downgrade_and_interval_switch() -> None:
    events = [
        subscription_event(CREATED, created=100, prices=[pro_monthly()]),
        subscription_event(UPDATED, created=200, prices=[business_monthly()]),
        subscription_event(UPDATED, created=300, prices=[pro_monthly()]),
        subscription_event(UPDATED, created=400, prices=[pro_yearly()]),
    ]
    state, effects = fold(events)

    assert of_type(effects, PlanChanged) == [
        PlanChanged("FREE", "PRO"),
        PlanChanged("PRO", "BUSINESS"),
        PlanChanged("BUSINESS", "PRO"),
    ]
    assert view(state)["plan"] == "PRO"
    assert view(state)["interval"] == "year"

    state, _ = fold([subscription_event(UPDATED, created=500, prices=[pro_monthly()])], state)
    assert view(state)["interval"] == "month"


def test_highest_live_subscription_wins_and_describes_the_account() -> None:
    events = [
        subscription_event(CREATED, created=100, sub_id="sub_pro", prices=[pro_monthly()]),
        subscription_event(
            CREATED,
            created=200,
            sub_id="sub_biz",
            prices=[business_monthly()],
            cancel_at_period_end=True,
        ),
    ]
    state, _ = fold(events)

    assert view(state)["plan"] == "BUSINESS"
    assert view(state)["subscription_id"] == "sub_biz"
    assert view(state)["cancel_at_period_end"] is True

    state, _ = fold([subscription_event(DELETED, created=300, sub_id="sub_biz")], state)
    assert view(state)["plan"] == "PRO"
    assert view(state)["subscription_id"] == "sub_pro"
    assert view(state)["cancel_at_period_end"] is False


def test_equal_tier_picks_the_most_recently_updated_subscription() -> None:
    events = [
        subscription_event(CREATED, created=100, sub_id="sub_a", prices=[pro_monthly()]),
        subscription_event(CREATED, created=200, sub_id="sub_b", prices=[pro_yearly()]),
    ]
    state, _ = fold(events)

    assert view(state)["subscription_id"] == "sub_b"
    assert view(state)["interval"] == "year"


def test_without_live_subscription_the_latest_updated_one_is_described() -> None:
    events = [
        subscription_event(CREATED, created=100, sub_id="sub_a", status="active"),
        subscription_event(DELETED, created=300, sub_id="sub_a"),
        subscription_event(CREATED, created=200, sub_id="sub_b", status="incomplete"),
    ]
    state, _ = fold(events)

    assert view(state)["plan"] == "FREE"
    assert view(state)["subscription_id"] == "sub_a"
    assert view(state)["subscription_status"] == "canceled"


def test_account_fields_before_any_subscription() -> None:
    from tests.support.factories import customer_event

    state, _ = fold([customer_event("customer.deleted", created=100)])

    account = view(state)
    assert account["subscription_id"] is None
    assert account["interval"] is None
    assert account["current_period_end"] is None
    assert account["cancel_at_period_end"] is False


def test_stale_update_is_ignored() -> None:
    events = [
        subscription_event(CREATED, created=100, status="active"),
        subscription_event(UPDATED, created=300, status="past_due"),
        subscription_event(UPDATED, created=200, status="active"),
    ]
    state, effects = fold(events)

    assert view(state)["subscription_status"] == "past_due"
    assert of_type(effects, Stale) == [Stale("sub_test1")]
    assert state.subscriptions["sub_test1"].last_event_created == 300


def test_equal_created_times_still_apply() -> None:
    events = [
        subscription_event(CREATED, created=100, status="incomplete"),
        subscription_event(UPDATED, created=100, status="active"),
    ]
    state, effects = fold(events)

    assert view(state)["subscription_status"] == "active"
    assert of_type(effects, Stale) == []


def test_staleness_is_per_subscription() -> None:
    events = [
        subscription_event(CREATED, created=500, sub_id="sub_a"),
        subscription_event(CREATED, created=100, sub_id="sub_b", prices=[business_monthly()]),
    ]
    state, effects = fold(events)

    assert of_type(effects, Stale) == []
    assert view(state)["plan"] == "BUSINESS"


def test_late_update_does_not_resurrect_a_deleted_subscription() -> None:
    events = [
        subscription_event(CREATED, created=100),
        subscription_event(DELETED, created=200),
        subscription_event(UPDATED, created=200, status="active"),  # same second, after
        subscription_event(UPDATED, created=250, status="active"),  # even newer
    ]
    state, effects = fold(events)

    assert view(state)["plan"] == "FREE"
    assert len(of_type(effects, Stale)) == 2


def test_deletion_arriving_before_older_updates_still_wins() -> None:
    events = [
        subscription_event(UPDATED, created=300, status="active"),
        subscription_event(DELETED, created=200),
    ]
    state, effects = fold(events)

    assert view(state)["plan"] == "FREE"
    assert of_type(effects, Stale) == []


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired"])
def test_ended_for_good_statuses_are_absorbing(status: str) -> None:
    events = [
        subscription_event(UPDATED, created=200, status=status),
        subscription_event(UPDATED, created=300, status="active"),
    ]
    state, effects = fold(events)

    assert view(state)["plan"] == "FREE"
    assert of_type(effects, Stale) == [Stale("sub_test1")]


def test_a_newer_ending_replaces_an_older_one_and_deletion_sticks() -> None:
    events = [
        subscription_event(DELETED, created=200, status="canceled", cancel_at_period_end=True),
        subscription_event(UPDATED, created=300, status="canceled"),
        subscription_event(DELETED, created=250),  # older than the record: stale
    ]
    state, effects = fold(events)

    record = state.subscriptions["sub_test1"]
    assert record.deleted is True
    assert record.last_event_created == 300
    assert record.cancel_at_period_end is False
    assert of_type(effects, Stale) == [Stale("sub_test1")]


def test_unknown_price_grants_the_default_plan_and_is_counted() -> None:
    state, effects = fold([subscription_event(CREATED, created=100, prices=[unknown_price()])])

    assert view(state)["plan"] == "FREE"
    assert view(state)["subscription_status"] == "active"
    assert of_type(effects, UnknownPrice) == [UnknownPrice("sub_test1", "not_in_map")]


def test_stale_event_with_unknown_price_is_not_counted() -> None:
    events = [
        subscription_event(CREATED, created=200),
        subscription_event(UPDATED, created=100, prices=[unknown_price()]),
    ]
    _, effects = fold(events)

    assert of_type(effects, UnknownPrice) == []


@pytest.mark.parametrize("period", ["top", "items"])
def test_current_period_end_in_either_api_shape(period: str) -> None:
    state, _ = fold(
        [subscription_event(CREATED, created=100, period=period, current_period_end=2_000_000)]
    )

    assert view(state)["current_period_end"] == 2_000_000


def test_pending_plan_and_cancel_at_period_end_come_from_the_subscription() -> None:
    state, _ = fold(
        [
            subscription_event(
                CREATED, created=100, prices=[business_monthly()], pending_plan="PRO"
            ),
            subscription_event(
                UPDATED,
                created=200,
                prices=[business_monthly()],
                pending_plan="PRO",
                cancel_at_period_end=True,
            ),
        ]
    )

    assert view(state)["pending_plan"] == "PRO"
    assert view(state)["cancel_at_period_end"] is True
