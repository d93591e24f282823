"""The delivery stream: deterministic per seed, every story kind present, Stripe's quirks real."""

from __future__ import annotations

import itertools
from collections import defaultdict

import orjson
import pytest

from billstream.routing import routing_key
from billstream.simulate.traffic import (
    RETRY_WINDOW,
    SWAP_WINDOW,
    Delivery,
    TrafficConfig,
    traffic,
)

START = 1_760_000_000
CONFIG = TrafficConfig(seed=7, start=START, customers=40)

# Every event type the reducer has a rule for, plus types it must ignore or ingest must drop.
EXPECTED_TYPES = {
    "customer.created", "customer.updated", "customer.deleted", "checkout.session.completed",
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.paused",
    "customer.subscription.resumed", "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
    "subscription_schedule.created", "subscription_schedule.updated",
    "subscription_schedule.released", "invoice_payment.paid", "invoice.updated",
    "invoice.created", "invoice.finalized", "invoice.upcoming", "invoice.paid",
    "invoice.payment_succeeded", "invoice.payment_failed", "invoice.payment_action_required",
    "invoice.voided", "invoice.marked_uncollectible",
    "payment_intent.succeeded", "payment_intent.requires_action", "charge.succeeded",
    "charge.failed",
}  # fmt: skip
EXPECTED_TAGS = {
    "signup_paid", "signup_trial", "signup_unknown_price", "trial_converted", "trial_canceled",
    "upgrade", "downgrade_immediate", "downgrade_scheduled", "downgrade_applied",
    "interval_month_to_year", "interval_year_to_month", "cancel_scheduled", "cancel_reverted",
    "canceled_at_period_end", "canceled_now", "paused", "resumed", "customer_deleted", "renewed",
    "dunning_entered", "dunning_recovered_1", "dunning_recovered_2", "dunning_recovered_3",
    "dunning_lost", "sca_entered", "sca_completed", "sca_abandoned",
    "downgrade_scheduled_by_schedule", "downgrade_applied_by_schedule", "downgrade_withdrawn",
    "pending_update_expired", "paid_in_parts",
}  # fmt: skip


@pytest.fixture(scope="module")
def deliveries() -> list[Delivery]:
    return list(itertools.islice(traffic(CONFIG), 6000))


def by_customer(deliveries: list[Delivery]) -> dict[str, list[Delivery]]:
    grouped: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.customer_id:
            grouped[delivery.customer_id].append(delivery)
    return grouped


def test_same_seed_same_traffic_other_seed_other_traffic(deliveries: list[Delivery]) -> None:
    again = list(itertools.islice(traffic(CONFIG), 6000))
    other = list(itertools.islice(traffic(TrafficConfig(seed=8, start=START, customers=40)), 50))
    assert again == deliveries
    assert {d.event_id for d in other}.isdisjoint(d.event_id for d in deliveries)


def test_every_kind_of_event_and_story_is_sent() -> None:
    # Twice the shared slice: the rarest stories (a withdrawn schedule downgrade) need it.
    deliveries = list(itertools.islice(traffic(CONFIG), 12000))
    assert EXPECTED_TYPES - {d.event_type for d in deliveries if d.kind == "event"} == set()
    assert EXPECTED_TAGS - {d.tag for d in deliveries if d.tag} == set()
    kinds = {d.kind for d in deliveries}
    assert kinds == {"event", "duplicate", "bad_signature", "bad_payload"}
    assert any(d.out_of_order for d in deliveries)


def test_bodies_route_to_their_customer_and_happened_before_start(
    deliveries: list[Delivery],
) -> None:
    for delivery in deliveries:
        if delivery.kind in ("event", "duplicate"):
            event = orjson.loads(delivery.body)
            if delivery.event_type.startswith("invoice_payment."):
                # An Invoice Payment has no `customer`: it routes by its own id (docs/state.md).
                assert routing_key(event) == event["data"]["object"]["id"]
            else:
                assert routing_key(event) == delivery.customer_id
            assert event["created"] == delivery.created <= START
    for stream in by_customer(deliveries).values():
        first, second = stream[0], stream[1] if len(stream) > 1 else stream[0]
        assert "customer.created" in (
            first.event_type,
            second.event_type if second.out_of_order else "",
        )


def test_a_retry_repeats_the_body_after_the_original_within_three_days(
    deliveries: list[Delivery],
) -> None:
    retries = 0
    for stream in by_customer(deliveries).values():
        for index, delivery in enumerate(stream):
            if delivery.kind != "duplicate":
                continue
            retries += 1
            [original] = [d for d in stream[:index] if d.event_id == delivery.event_id]
            assert original.body == delivery.body
            between = stream[stream.index(original) + 1 : index]
            assert all(d.created <= delivery.created + RETRY_WINDOW for d in between)
    assert retries > 50


def test_only_close_neighbours_arrive_out_of_order(deliveries: list[Delivery]) -> None:
    swapped = 0
    for stream in by_customer(deliveries).values():
        firsts = [d for d in stream if d.kind == "event"]
        for earlier, later in itertools.pairwise(firsts):
            if later.out_of_order:
                swapped += 1
                assert earlier.created >= later.created
                assert earlier.created - later.created <= SWAP_WINDOW
            else:
                assert earlier.created <= later.created
    assert swapped > 20


def test_recovered_dunning_follows_exactly_n_failures(deliveries: list[Delivery]) -> None:
    checked = 0
    for stream in by_customer(deliveries).values():
        failures: dict[str, int] = defaultdict(int)
        for delivery in (d for d in stream if d.kind == "event"):
            obj = orjson.loads(delivery.body)["data"]["object"]
            if delivery.event_type == "invoice.payment_failed":
                failures[obj["id"]] += 1
            if delivery.tag and delivery.tag.startswith("dunning_recovered_"):
                assert failures[obj["id"]] == int(delivery.tag[-1])
                checked += 1
    assert checked > 5
