"""The simulator's newer stories fold to what docs/state.md promises: a schedule downgrade shows
as pending_plan until Stripe applies it, a part payment keeps dunning open, a payment-gated
upgrade moves the plan only once applied."""

from __future__ import annotations

import random

import pytest

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import apply
from billstream.processors.schedules import SCHEDULE, pending_plan_source
from billstream.settings import Settings
from billstream.simulate import catalog, events, payments, scenarios, schedules
from billstream.simulate.story import Story
from billstream.tables.state import CustomerState

START = 1_760_000_000
CONFIG = ReducerConfig.from_settings(
    Settings(_env_file=None, billing_plan_map=catalog.SIMULATOR_PLAN_MAP)
)


def folded(story: Story) -> CustomerState:
    state = None
    for planned in story.planned:
        state, _ = apply(state, planned.event, CONFIG)
    assert state is not None
    return state


def account(story: Story) -> dict[str, object]:
    view = folded(story).account_view()
    assert view is not None
    return view


def business_story(seed: int, api_version: str) -> Story:
    story = Story(random.Random(seed), START, api_version)
    story.customer_event("customer.created")
    assert scenarios.sign_up_paid(story, catalog.BUSINESS_MONTHLY) or story.sub is not None
    story.update_sub(status="active")
    return story


@pytest.mark.parametrize("api_version", events.API_VERSIONS)
def test_a_schedule_downgrade_is_pending_until_stripe_applies_it(api_version: str) -> None:
    for seed in range(40):
        story = business_story(seed, api_version)
        schedules.schedule_downgrade(story, "PRO")
        if story.schedule is None:
            assert account(story)["pending_plan"] is None  # withdrawn: released
            continue
        assert account(story)["pending_plan"] == "PRO"
        assert pending_plan_source(folded(story)) == SCHEDULE
        sub = story.sub
        assert sub is not None
        story.wait_until(sub.period_end)
        start, end = story.next_period()
        schedules.enter_next_phase(story, start, end)
        after = account(story)
        assert (after["plan"], after["pending_plan"]) == ("PRO", None)
        story.wait_until(end)
        schedules.complete_if_over(story)
        assert story.schedule is None
        assert folded(story).schedules[story.planned[-2].event["data"]["object"]["id"]].status == (
            "released"
        )
        return
    pytest.fail("no seed kept its schedule")


def test_an_invoice_paid_in_parts_stays_in_dunning_until_the_last_part() -> None:
    story = business_story(1, events.BASIL_API)
    sub = story.sub
    assert sub is not None
    inv = story.open_invoice("subscription_cycle", 9900, sub.period_start, sub.period_end)
    story.fail(inv, 3, tag="dunning_entered")
    payments.pay_part(story, inv, 4000, 0, tag="paid_in_parts")
    assert account(story)["payment_state"] == "past_due"
    story.wait(86400)
    story.pay(inv)
    assert account(story)["payment_state"] == "ok"
    assert folded(story).invoices[inv.id].outcome == "paid"


def test_a_gated_upgrade_moves_the_plan_only_when_applied() -> None:
    seen = set()
    for seed in range(30):
        story = Story(random.Random(seed), START, events.BASIL_API)
        story.customer_event("customer.created")
        scenarios.sign_up_paid(story, catalog.PRO_MONTHLY)
        if story.sub is None or story.sub.status != "active":
            continue
        payments.gated_upgrade(story, catalog.BUSINESS_MONTHLY, "upgrade")
        # The last subscription event (an entitlement summary may follow it).
        types = [p.event["type"] for p in story.planned]
        last = [t for t in types if t.startswith("customer.subscription.")][-1]
        expected = "BUSINESS" if last.endswith("pending_update_applied") else "PRO"
        assert account(story)["plan"] == expected
        assert account(story)["payment_state"] == "ok"
        seen.add(expected)
    assert seen == {"PRO", "BUSINESS"}
