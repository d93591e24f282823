"""Deferred downgrades the way Stripe recommends: a subscription schedule whose next phase has
the lower price, applied by Stripe at the period end (docs/state.md, "Subscription schedules").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from billstream.simulate import catalog, events

if TYPE_CHECKING:
    from billstream.simulate.story import Story

DAY = 86400
PERIOD_DAYS = {"month": 30, "year": 365}


@dataclass
class Phase:
    price: catalog.Price
    start: int
    end: int


@dataclass
class Schedule:
    id: str
    created: int
    phases: list[Phase] = field(default_factory=list)
    current: int = 0
    status: str = "active"
    ended_at: int | None = None


def schedule_object(schedule: Schedule, *, customer_id: str, subscription_id: str) -> events.Json:
    """A `subscription_schedule` as webhooks carry it: phase prices are ids, not expanded."""
    active = schedule.status == "active"
    released = schedule.status == "released"
    current = schedule.phases[schedule.current] if active else None
    return {
        "id": schedule.id,
        "object": "subscription_schedule",
        "application": None,
        "canceled_at": schedule.ended_at if schedule.status == "canceled" else None,
        "completed_at": None,
        "created": schedule.created,
        "current_phase": None if current is None else {
            "start_date": current.start, "end_date": current.end
        },
        "customer": customer_id,
        "default_settings": {"collection_method": "charge_automatically"},
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "phases": [
            {
                "start_date": phase.start,
                "end_date": phase.end,
                "items": [{"price": phase.price.id, "quantity": 1, "metadata": {}}],
                "proration_behavior": "none",
            }
            for phase in schedule.phases
        ],
        "released_at": schedule.ended_at if released else None,
        "released_subscription": subscription_id if released else None,
        "status": schedule.status,
        "subscription": None if released else subscription_id,
        "test_clock": None,
    }  # fmt: skip


def _emit(story: Story, event_type: str, tag: str | None = None) -> None:
    assert story.sub is not None
    assert story.schedule is not None
    obj = schedule_object(
        story.schedule, customer_id=story.customer_id, subscription_id=story.sub.id
    )
    story.emit(event_type, obj, tag=tag)


def _schedule_changed(story: Story, before: str | None) -> None:
    """`customer.subscription.updated` for the subscription's `schedule` field changing."""
    assert story.sub is not None
    if story.schedule is not None and story.schedule.status != "active":
        story.schedule = None
    story.emit(
        "customer.subscription.updated",
        story.sub_object(story.sub),
        previous={"schedule": before},
    )


def schedule_downgrade(story: Story, plan: str) -> None:
    """`from_subscription`, then a second phase at the period end with the lower price."""
    sub = story.sub
    assert sub is not None
    target = catalog.price_for(plan, sub.price.interval)
    after = sub.period_end + PERIOD_DAYS[target.interval] * DAY
    story.schedule = Schedule(
        story.new_id("sub_sched"),
        story.now,
        [Phase(sub.price, sub.period_start, sub.period_end), Phase(target, sub.period_end, after)],
    )
    _emit(story, "subscription_schedule.created", tag="downgrade_scheduled_by_schedule")
    _schedule_changed(story, None)
    if story.rng.random() < 0.4:
        story.wait(story.rng.randint(1, 3) * DAY)
        release(story, tag="downgrade_withdrawn")


def release(story: Story, tag: str | None = None) -> None:
    """The schedule lets go of the subscription, which keeps its current price."""
    assert story.schedule is not None
    story.schedule.status, story.schedule.ended_at = "released", story.now
    _emit(story, "subscription_schedule.released", tag=tag)
    _schedule_changed(story, story.schedule.id)


def cancel(story: Story) -> None:
    """The subscription ended: Stripe cancels its schedule."""
    assert story.schedule is not None
    story.schedule.status, story.schedule.ended_at = "canceled", story.now
    _emit(story, "subscription_schedule.canceled")
    story.schedule = None


def next_phase_due(story: Story) -> catalog.Price | None:
    """The next phase's price when it starts now (at the period end), else None."""
    schedule = story.schedule
    if schedule is None or schedule.current + 1 >= len(schedule.phases):
        return None
    phase = schedule.phases[schedule.current + 1]
    return phase.price if phase.start <= story.now else None


def enter_next_phase(story: Story, start: int, end: int) -> None:
    """Stripe moves the subscription to the next phase's price, then updates the schedule."""
    price = next_phase_due(story)
    assert price is not None
    assert story.schedule is not None
    story.update_sub(
        price=price, period_start=start, period_end=end, tag="downgrade_applied_by_schedule"
    )
    story.schedule.current += 1
    _emit(story, "subscription_schedule.updated")


def complete_if_over(story: Story) -> None:
    """After its last phase a schedule with `end_behavior=release` releases the subscription."""
    schedule = story.schedule
    if schedule is None or schedule.current + 1 < len(schedule.phases):
        return
    if schedule.phases[schedule.current].end <= story.now:
        release(story)
