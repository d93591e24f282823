"""Payment-gated changes (payment_behavior=pending_if_incomplete): the plan moves when applied."""

from __future__ import annotations

import itertools

from billstream.processors.effects import PlanChanged, SubscriptionEvent
from tests.support.billing_events import pending_update_event
from tests.support.factories import (
    MONTH,
    Json,
    business_monthly,
    invoice_event,
    pro_monthly,
    subscription_event,
)
from tests.unit.processors.support import fold, of_type, view

APPLIED = "customer.subscription.pending_update_applied"
EXPIRED = "customer.subscription.pending_update_expired"
END = 100 + MONTH  # one period: the pending update never moves it
STAMPS = ("version", "updated_by_event", "updated_by_event_type", "updated_at")


def derived(account: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in account.items() if k not in STAMPS}


def created() -> Json:
    return subscription_event(
        "customer.subscription.created", created=100, prices=[pro_monthly()], current_period_end=END
    )


def pending_upgrade(at: int = 200) -> Json:
    # Stripe keeps the items as they were; the new ones wait in `pending_update`.
    return pending_update_event(
        created=at,
        prices=[pro_monthly()],
        pending_prices=[business_monthly()],
        current_period_end=END,
    )


def test_an_update_with_a_pending_update_keeps_the_plan() -> None:
    state, effects = fold([created(), pending_upgrade()])
    assert view(state)["plan"] == "PRO"
    assert of_type(effects, PlanChanged) == [PlanChanged("FREE", "PRO")]


def test_the_applied_update_changes_the_plan() -> None:
    applied = subscription_event(APPLIED, created=300, prices=[business_monthly()])
    state, effects = fold([created(), pending_upgrade(), applied])
    assert view(state)["plan"] == "BUSINESS"
    assert of_type(effects, PlanChanged)[-1] == PlanChanged("PRO", "BUSINESS")
    assert SubscriptionEvent(APPLIED) in effects
    assert view(state)["updated_by_event_type"] == APPLIED


def test_an_expired_update_changes_nothing() -> None:
    state, _ = fold([created(), pending_upgrade()])
    before = view(state)
    expired = subscription_event(
        EXPIRED, created=300, prices=[pro_monthly()], current_period_end=END
    )
    state, effects = fold([expired], state)
    assert view(state) == before  # same fields, no new version
    assert effects == [SubscriptionEvent(EXPIRED)]


def test_every_order_of_a_failed_then_applied_upgrade_ends_on_the_new_plan() -> None:
    story = [
        created(),
        pending_upgrade(200),
        invoice_event("invoice.payment_failed", created=200),
        invoice_event("invoice.paid", created=400),
        subscription_event(APPLIED, created=400, prices=[business_monthly()]),
    ]
    expected, _ = fold(story)
    assert view(expected)["plan"] == "BUSINESS"
    assert view(expected)["payment_state"] == "ok"
    for order in itertools.permutations(story):
        state, _ = fold(order)
        assert derived(view(state)) == derived(view(expected))


def test_every_order_of_an_expired_upgrade_keeps_the_old_plan() -> None:
    story = [
        created(),
        pending_upgrade(200),
        subscription_event(
            EXPIRED, created=200 + 23 * 3600, prices=[pro_monthly()], current_period_end=END
        ),
    ]
    for order in itertools.permutations(story):
        state, _ = fold(order)
        assert view(state)["plan"] == "PRO"
        assert state.subscriptions["sub_test1"].last_event_created == 200 + 23 * 3600


def test_pending_metadata_is_not_read_before_it_is_applied() -> None:
    # dahlia: metadata passed with a pending update waits in pending_update.metadata.
    event = pending_upgrade()
    event["data"]["object"]["pending_update"]["metadata"] = {"pending_plan": "FREE"}
    state, _ = fold([created(), event])
    assert view(state)["pending_plan"] is None
