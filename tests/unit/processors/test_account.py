"""The account view: versioning, published effects, deferred downgrades, customer deletion."""

from __future__ import annotations

from typing import Any

from billstream.processors.effects import AccountChanged, DowngradeScheduled, PlanChanged
from tests.support.factories import (
    business_monthly,
    customer_event,
    invoice_event,
    pro_monthly,
    subscription_event,
)
from tests.unit.processors.support import fold, of_type, view

CREATED = "customer.subscription.created"
UPDATED = "customer.subscription.updated"


def test_first_change_publishes_version_one_with_every_contract_field() -> None:
    event = subscription_event(CREATED, created=1_767_225_600, current_period_end=1_769_904_000)
    state, effects = fold([event])

    assert view(state) == {
        "customer_id": "cus_test1",
        "plan": "PRO",
        "interval": "month",
        "subscription_id": "sub_test1",
        "subscription_status": "active",
        "payment_state": "ok",
        "cancel_at_period_end": False,
        "pending_plan": None,
        "current_period_end": 1_769_904_000,
        "deleted": False,
        "version": 1,
        "updated_by_event": event["id"],
        "updated_by_event_type": "customer.subscription.created",
        "updated_at": 1_767_225_600,
        "features": [],
    }
    assert of_type(effects, AccountChanged) == [AccountChanged(view(state))]


def test_each_change_bumps_the_version_once_and_no_change_bumps_nothing() -> None:
    period: dict[str, Any] = {"current_period_end": 5_000_000}
    state, _ = fold([subscription_event(CREATED, created=100, **period)])
    same = subscription_event(UPDATED, created=200, **period)  # new event, same subscription
    state, effects = fold([same], state)

    assert view(state)["version"] == 1
    assert view(state)["updated_at"] == 100
    assert of_type(effects, AccountChanged) == []

    changed = subscription_event(UPDATED, created=300, status="past_due", **period)
    state, effects = fold([changed], state)
    assert view(state)["version"] == 2
    assert view(state)["updated_by_event"] == changed["id"]
    assert view(state)["updated_at"] == 300
    assert len(of_type(effects, AccountChanged)) == 1


def test_events_without_a_rule_create_no_account() -> None:
    state, effects = fold(
        [
            invoice_event("invoice.created", created=100),
            customer_event("customer.created", created=100),
        ]
    )

    assert state.account_view() is None
    assert effects == []


def test_plan_change_effect_for_a_new_account_starts_from_the_default_plan() -> None:
    _, effects = fold([subscription_event(CREATED, created=100, prices=[business_monthly()])])

    assert of_type(effects, PlanChanged) == [PlanChanged("FREE", "BUSINESS")]


def test_downgrade_scheduled_when_a_lower_pending_plan_appears() -> None:
    events = [
        subscription_event(CREATED, created=100, prices=[business_monthly()]),
        subscription_event(
            UPDATED,
            created=200,
            prices=[business_monthly()],
            pending_plan="PRO",
            cancel_at_period_end=True,
        ),
        # The same schedule seen again (another field changes) is not a new downgrade.
        subscription_event(
            UPDATED,
            created=300,
            prices=[business_monthly()],
            pending_plan="PRO",
            cancel_at_period_end=True,
            current_period_end=9_999_999,
        ),
    ]
    _, effects = fold(events)

    assert of_type(effects, DowngradeScheduled) == [
        DowngradeScheduled("sub_test1", "BUSINESS", "PRO")
    ]


def test_downgrade_scheduled_again_after_being_withdrawn() -> None:
    kept: dict[str, Any] = {"prices": [business_monthly()]}
    events = [
        subscription_event(CREATED, created=100, pending_plan="FREE", **kept),
        subscription_event(UPDATED, created=200, **kept),
        subscription_event(UPDATED, created=300, pending_plan="PRO", **kept),
    ]
    _, effects = fold(events)

    assert of_type(effects, DowngradeScheduled) == [
        DowngradeScheduled("sub_test1", "BUSINESS", "FREE"),
        DowngradeScheduled("sub_test1", "BUSINESS", "PRO"),
    ]


def test_pending_plan_that_is_not_lower_schedules_no_downgrade() -> None:
    events = [
        subscription_event(CREATED, created=100, prices=[pro_monthly()], pending_plan="BUSINESS"),
        subscription_event(UPDATED, created=200, prices=[pro_monthly()], pending_plan="PRO"),
        subscription_event(UPDATED, created=300, prices=[pro_monthly()], pending_plan="GOLD"),
        subscription_event(UPDATED, created=400, prices=[pro_monthly()], cancel_at_period_end=True),
    ]
    state, effects = fold(events)

    assert of_type(effects, DowngradeScheduled) == []
    assert view(state)["pending_plan"] is None
    assert view(state)["cancel_at_period_end"] is True


def test_customer_deleted_marks_the_account_and_drops_the_plan() -> None:
    state, effects = fold(
        [
            subscription_event(CREATED, created=100),
            customer_event("customer.deleted", created=200),
        ]
    )

    assert view(state)["deleted"] is True
    assert view(state)["plan"] == "FREE"
    assert of_type(effects, PlanChanged) == [PlanChanged("FREE", "PRO"), PlanChanged("PRO", "FREE")]

    # Deletion is final: later subscription events do not restore a plan.
    state, _ = fold([subscription_event(UPDATED, created=300)], state)
    assert view(state)["deleted"] is True
    assert view(state)["plan"] == "FREE"


def test_customer_deleted_for_an_unknown_customer_publishes_the_deletion() -> None:
    state, effects = fold([customer_event("customer.deleted", created=100, customer="cus_gone")])

    assert view(state)["customer_id"] == "cus_gone"
    assert view(state)["deleted"] is True
    assert of_type(effects, PlanChanged) == []
