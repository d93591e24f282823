"""Customer lives with realistic odds: sign-ups and trials, plan and interval changes, deferred
downgrades, cancellations, dunning that recovers after 1-3 failures or is lost, SCA completed or
abandoned. Each branch mirrors what Stripe Billing emits for it with default dunning settings.
"""

from __future__ import annotations

import random

from billstream.simulate import catalog, events, payments, schedules
from billstream.simulate.story import DAY, PERIOD_DAYS, Invoice, Story

TRIAL_DAYS = 14
RETRY_DAYS = (3, 5, 7)  # Smart Retries-like schedule after the first failure
SCA_EXPIRY = 23 * 3600  # an incomplete first payment expires after 23 hours


def pick_price(rng: random.Random) -> catalog.Price:
    roll = rng.random()
    if roll < 0.02:
        return catalog.LEGACY
    plan = "PRO" if roll < 0.70 else "BUSINESS"
    return catalog.price_for(plan, "year" if rng.random() < 0.2 else "month")


def customer_story(rng: random.Random, start: int, api_version: str) -> Story:
    """One customer's whole life, from `customer.created` to churn or its last renewal."""
    story = Story(rng, start, api_version)
    story.customer_event("customer.created")
    price = pick_price(rng)
    if rng.random() < 0.45 and not sign_up_trial(story, price):
        return story
    if story.sub is None and not sign_up_paid(story, price):
        return story
    if rng.random() < 0.2:
        story.wait(rng.randint(1, 5) * DAY)
        story.customer_event("customer.updated")  # e.g. a new billing email: no state change
    for _ in range(rng.randint(1, 4)):
        if not mid_period_change(story) or not renew(story):
            break
    if story.sub is not None and story.sub.status == "canceled" and rng.random() < 0.3:
        story.wait(rng.randint(1, 20) * DAY)
        story.customer_event("customer.deleted", tag="customer_deleted")
    return story


def sign_up_trial(story: Story, price: catalog.Price) -> bool:
    """Trial with a $0 first invoice; at its end it converts, is cancelled, or goes to dunning."""
    tag = "signup_unknown_price" if price is catalog.LEGACY else "signup_trial"
    sub = story.open_subscription(price, "trialing", TRIAL_DAYS, tag=tag)
    inv = story.open_invoice("subscription_create", 0, sub.period_start, sub.period_end)
    story.pay(inv)
    checkout(story, 0)
    assert sub.trial_end is not None
    story.wait_until(sub.trial_end - 3 * DAY)
    story.emit("customer.subscription.trial_will_end", story.sub_object(sub))
    if story.rng.random() < 0.15:
        story.wait(story.rng.randint(1, 2 * DAY))
        story.update_sub(cancel_at_period_end=True, tag="cancel_scheduled")
        story.wait_until(sub.trial_end)
        story.delete_sub(tag="trial_canceled")
        return False
    story.wait_until(sub.trial_end)
    start, end = sub.trial_end, sub.trial_end + PERIOD_DAYS[price.interval] * DAY
    story.update_sub(status="active", period_start=start, period_end=end, tag="trial_converted")
    return collect(story, story.open_invoice("subscription_cycle", price.unit_amount, start, end))


def sign_up_paid(story: Story, price: catalog.Price) -> bool:
    """Checkout without trial; 10% of first payments need 3-D Secure, some are abandoned."""
    tag = "signup_unknown_price" if price is catalog.LEGACY else "signup_paid"
    sub = story.open_subscription(price, "incomplete", tag=tag)
    inv = story.open_invoice("subscription_create", price.unit_amount, sub.created, sub.period_end)
    if story.rng.random() < 0.10:
        story.action_required(inv, tag="sca_entered")
        if story.rng.random() < 0.3:
            story.wait(SCA_EXPIRY)
            story.update_sub(status="incomplete_expired", tag="sca_abandoned")
            story.close_invoice(inv, "void")
            return False
        story.wait(story.rng.randint(30, 900))
        story.pay(inv, tag="sca_completed")
    else:
        story.pay(inv)
    story.update_sub(status="active")
    checkout(story, price.unit_amount)
    return True


def checkout(story: Story, amount: int) -> None:
    assert story.sub is not None
    session = events.checkout_session(
        story.new_id("cs_live"),
        customer_id=story.customer_id,
        subscription_id=story.sub.id,
        created=story.now,
        amount_total=amount,
    )
    story.emit("checkout.session.completed", session)


def mid_period_change(story: Story) -> bool:
    """Maybe change the subscription during the period; False when it ended."""
    sub, rng = story.sub, story.rng
    assert sub is not None
    story.wait(rng.randint(2, max(3, (sub.period_end - story.now) // DAY - 4)) * DAY)
    roll = rng.random()
    plan, interval = sub.price.plan, sub.price.interval
    if sub.price is catalog.LEGACY:
        return True
    if roll < 0.12 and plan == "PRO":
        if rng.random() < 0.2:
            payments.gated_upgrade(story, catalog.price_for("BUSINESS", interval), "upgrade")
        else:
            change_price(story, catalog.price_for("BUSINESS", interval), "upgrade")
    elif roll < 0.20:
        other: catalog.Interval = "year" if interval == "month" else "month"
        change_price(story, catalog.price_for(plan, other), f"interval_{interval}_to_{other}")
    elif roll < 0.28 and plan == "BUSINESS" and story.schedule is None:
        if rng.random() < 0.5:
            schedules.schedule_downgrade(story, "PRO")
        else:
            story.update_sub(pending_plan="PRO", tag="downgrade_scheduled")
    elif roll < 0.32 and plan == "BUSINESS":
        change_price(story, catalog.price_for("PRO", interval), "downgrade_immediate")
    elif roll < 0.40:
        story.update_sub(cancel_at_period_end=True, tag="cancel_scheduled")
        if rng.random() < 0.25:
            story.wait(rng.randint(1, 3) * DAY)
            story.update_sub(cancel_at_period_end=False, tag="cancel_reverted")
    elif roll < 0.43:
        story.delete_sub(tag="canceled_now")
        return False
    elif roll < 0.45:
        story.update_sub(status="paused", event_type="customer.subscription.paused", tag="paused")
        story.wait(rng.randint(3, 10) * DAY)
        story.update_sub(status="active", event_type="customer.subscription.resumed", tag="resumed")
    return True


def change_price(story: Story, price: catalog.Price, tag: str) -> None:
    """An immediate, prorated change: the new price starts a new period and is invoiced now."""
    sub = story.sub
    assert sub is not None
    start = story.now
    end = start + PERIOD_DAYS[price.interval] * DAY
    story.update_sub(price=price, period_start=start, period_end=end, tag=tag)
    prorated = max(0, price.unit_amount - sub.price.unit_amount // 2)
    story.pay(story.open_invoice("subscription_update", prorated, start, end))


def renew(story: Story) -> bool:
    """The period ends: scheduled cancellations and downgrades apply, then the renewal invoice."""
    sub = story.sub
    assert sub is not None
    story.wait_until(sub.period_end - 3 * DAY)
    story.upcoming_invoice()
    story.wait_until(sub.period_end)
    if sub.cancel_at_period_end:
        story.delete_sub(tag="canceled_at_period_end")
        return False
    start, end = story.next_period()
    schedules.complete_if_over(story)
    if schedules.next_phase_due(story) is not None:
        schedules.enter_next_phase(story, start, end)
    elif sub.pending_plan:
        price = catalog.price_for(sub.pending_plan, sub.price.interval)
        story.update_sub(
            price=price,
            pending_plan=None,
            period_start=start,
            period_end=end,
            tag="downgrade_applied",
        )
    else:
        story.update_sub(period_start=start, period_end=end)
    price = story.sub.price if story.sub else sub.price
    return collect(story, story.open_invoice("subscription_cycle", price.unit_amount, start, end))


def collect(story: Story, inv: Invoice) -> bool:
    """Charge a period's invoice: paid (most), dunning, or SCA. False when the customer is lost."""
    roll = story.rng.random()
    if roll < 0.78:
        story.pay(inv, tag="renewed")
        return True
    if roll < 0.92:
        return dunning(story, inv)
    return renewal_sca(story, inv)


def dunning(story: Story, inv: Invoice) -> bool:
    """Up to 4 attempts: recovered after 1-3 failures (~65%), or lost as Stripe settings say."""
    rng = story.rng
    failures = rng.choice((1, 1, 1, 2, 2, 3, 4, 4))
    for attempt in range(1, failures + 1):
        retry = RETRY_DAYS[attempt - 1] if attempt <= len(RETRY_DAYS) else None
        story.fail(inv, retry, tag="dunning_entered" if attempt == 1 else None)
        if attempt == 1:
            story.update_sub(status="past_due")
        if retry is not None and attempt < failures:
            story.wait(retry * DAY)
    if failures <= len(RETRY_DAYS):
        story.wait(rng.randint(1, RETRY_DAYS[failures - 1]) * DAY)
        if inv.amount and rng.random() < 0.2:
            payments.pay_in_parts(story, inv, tag=f"dunning_recovered_{failures}")
        else:
            story.pay(inv, tag=f"dunning_recovered_{failures}")
        story.update_sub(status="active")
        return True
    lose(story, inv, "dunning_lost")
    return False


def renewal_sca(story: Story, inv: Invoice) -> bool:
    """3-D Secure on a renewal: the customer completes it within hours, or never."""
    story.action_required(inv, tag="sca_entered")
    story.update_sub(status="past_due")
    if story.rng.random() < 0.7:
        story.wait(story.rng.randint(600, 20 * 3600))
        story.pay(inv, tag="sca_completed")
        story.update_sub(status="active")
        return True
    story.wait(sum(RETRY_DAYS) * DAY)
    lose(story, inv, "sca_abandoned")
    return False


def lose(story: Story, inv: Invoice, tag: str) -> None:
    """What Stripe does when retries run out: cancel, mark unpaid, or write the invoice off."""
    roll = story.rng.random()
    if roll < 0.5:
        story.delete_sub(tag=tag)
    elif roll < 0.75:
        story.update_sub(status="unpaid", tag=tag)
    else:
        story.close_invoice(inv, "uncollectible", tag=tag)
