"""Invoice episodes: dunning and SCA per invoice id, their outcomes, payment_state, durations."""

from __future__ import annotations

import pytest

from billstream.processors.effects import (
    DunningEntered,
    DunningLost,
    DunningRecovered,
    InvoiceActionRequired,
    InvoiceFailed,
    InvoicePaid,
    ScaCompleted,
    ScaEntered,
    ScaLost,
)
from tests.support.factories import invoice_event, subscription_event
from tests.unit.processors.support import fold, of_type, view

FAILED = "invoice.payment_failed"
ACTION = "invoice.payment_action_required"
PAID = "invoice.paid"
SUCCEEDED = "invoice.payment_succeeded"


@pytest.mark.parametrize("shape", ["old", "basil"])
def test_failure_opens_dunning_and_payment_recovers_it(shape: str) -> None:
    state, effects = fold([invoice_event(FAILED, created=1_000, shape=shape)])
    assert view(state)["payment_state"] == "past_due"
    assert of_type(effects, DunningEntered) == [DunningEntered("in_test1")]
    assert state.invoices["in_test1"].subscription_id == "sub_test1"

    state, effects = fold([invoice_event(PAID, created=4_600, shape=shape)], state)
    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 3_600)]
    assert of_type(effects, InvoicePaid) == [InvoicePaid("in_test1")]


def test_repeated_failures_are_one_episode_timed_from_the_first() -> None:
    events = [
        invoice_event(FAILED, created=1_000, attempt_count=1),
        invoice_event(FAILED, created=2_000, attempt_count=2),
        invoice_event(FAILED, created=3_000, attempt_count=3),
        invoice_event(SUCCEEDED, created=5_000),
        invoice_event(PAID, created=5_000),
    ]
    _, effects = fold(events)

    assert len(of_type(effects, InvoiceFailed)) == 3
    assert len(of_type(effects, DunningEntered)) == 1
    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 4_000)]
    assert len(of_type(effects, InvoicePaid)) == 1  # paid + payment_succeeded: one invoice


def test_an_earlier_failure_arriving_late_moves_the_episode_start() -> None:
    events = [
        invoice_event(FAILED, created=2_000),
        invoice_event(FAILED, created=1_000),
        invoice_event(PAID, created=3_000),
    ]
    _, effects = fold(events)

    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 2_000)]


def test_failure_after_payment_opens_nothing() -> None:
    events = [invoice_event(PAID, created=2_000), invoice_event(FAILED, created=1_000)]
    state, effects = fold(events)

    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, DunningEntered) == []
    assert of_type(effects, InvoiceFailed) == [InvoiceFailed("in_test1")]


def test_payment_dated_before_the_failure_records_zero_seconds() -> None:
    events = [invoice_event(FAILED, created=2_000), invoice_event(PAID, created=1_999)]
    _, effects = fold(events)

    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 0)]


def test_action_required_opens_sca_and_payment_completes_it() -> None:
    events = [
        invoice_event(ACTION, created=1_000),
        invoice_event(ACTION, created=1_050),
    ]
    state, effects = fold(events)
    assert view(state)["payment_state"] == "requires_action"
    assert len(of_type(effects, InvoiceActionRequired)) == 2
    assert of_type(effects, ScaEntered) == [ScaEntered("in_test1")]

    state, effects = fold([invoice_event(PAID, created=1_120)], state)
    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, ScaCompleted) == [ScaCompleted("in_test1", 120)]


def test_earlier_sca_request_arriving_late_moves_the_start() -> None:
    events = [
        invoice_event(ACTION, created=1_050),
        invoice_event(ACTION, created=1_000),
        invoice_event(PAID, created=1_100),
    ]
    _, effects = fold(events)

    assert of_type(effects, ScaCompleted) == [ScaCompleted("in_test1", 100)]


def test_dunning_outranks_sca_in_payment_state() -> None:
    events = [
        invoice_event(ACTION, created=1_000, invoice_id="in_a"),
        invoice_event(FAILED, created=1_100, invoice_id="in_b"),
    ]
    state, _ = fold(events)
    assert view(state)["payment_state"] == "past_due"

    state, _ = fold([invoice_event(PAID, created=1_200, invoice_id="in_b")], state)
    assert view(state)["payment_state"] == "requires_action"


def test_payment_closes_both_episodes_of_an_invoice() -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        invoice_event(ACTION, created=1_500),
        invoice_event(PAID, created=2_000),
    ]
    _, effects = fold(events)

    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 1_000)]
    assert of_type(effects, ScaCompleted) == [ScaCompleted("in_test1", 500)]


@pytest.mark.parametrize("closing", ["invoice.voided", "invoice.marked_uncollectible"])
def test_void_or_uncollectible_loses_the_episodes(closing: str) -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        invoice_event(ACTION, created=1_100),
        invoice_event(closing, created=2_000),
    ]
    state, effects = fold(events)

    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, DunningLost) == [DunningLost("in_test1")]
    assert of_type(effects, ScaLost) == [ScaLost("in_test1")]


def test_a_lost_invoice_paid_later_is_not_a_recovery_and_never_reopens() -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        invoice_event("invoice.marked_uncollectible", created=2_000),
        invoice_event(PAID, created=3_000),
        invoice_event(FAILED, created=4_000),
        invoice_event("invoice.voided", created=5_000),
    ]
    state, effects = fold(events)

    assert of_type(effects, DunningRecovered) == []
    assert of_type(effects, InvoicePaid) == [InvoicePaid("in_test1")]
    assert len(of_type(effects, DunningEntered)) == 1
    assert len(of_type(effects, DunningLost)) == 1
    assert view(state)["payment_state"] == "ok"


def test_closing_an_invoice_without_episodes_prevents_later_ones() -> None:
    events = [invoice_event("invoice.voided", created=1_000), invoice_event(ACTION, created=900)]
    state, effects = fold(events)

    assert of_type(effects, ScaEntered) == []
    assert view(state)["payment_state"] == "ok"


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("customer.subscription.deleted", "canceled"),
        ("customer.subscription.updated", "canceled"),
        ("customer.subscription.updated", "unpaid"),
        ("customer.subscription.updated", "incomplete_expired"),
    ],
)
def test_subscription_ending_loses_its_invoices_episodes(event_type: str, status: str) -> None:
    events = [
        subscription_event("customer.subscription.created", created=500),
        invoice_event(FAILED, created=1_000, invoice_id="in_a"),
        invoice_event(ACTION, created=1_000, invoice_id="in_b", shape="basil"),
        invoice_event(FAILED, created=1_000, invoice_id="in_other", subscription_id="sub_other"),
        subscription_event(event_type, created=2_000, status=status),
    ]
    state, effects = fold(events)

    assert of_type(effects, DunningLost) == [DunningLost("in_a")]
    assert of_type(effects, ScaLost) == [ScaLost("in_b")]
    assert view(state)["payment_state"] == "past_due"  # in_other's subscription lives on


def test_past_due_subscription_does_not_end_dunning() -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        subscription_event("customer.subscription.updated", created=1_001, status="past_due"),
    ]
    state, effects = fold(events)

    assert of_type(effects, DunningLost) == []
    assert view(state)["payment_state"] == "past_due"


def test_failure_of_an_already_deleted_subscription_is_lost_at_once() -> None:
    events = [
        subscription_event("customer.subscription.deleted", created=1_000),
        invoice_event(FAILED, created=2_000),
    ]
    state, effects = fold(events)

    assert of_type(effects, DunningEntered) == [DunningEntered("in_test1")]
    assert of_type(effects, DunningLost) == [DunningLost("in_test1")]
    assert view(state)["payment_state"] == "ok"


def test_failure_older_than_an_unpaid_ending_that_arrived_first_is_lost() -> None:
    events = [
        subscription_event("customer.subscription.updated", created=3_000, status="active"),
        subscription_event("customer.subscription.updated", created=2_000, status="unpaid"),
        invoice_event(FAILED, created=1_000),
    ]
    state, effects = fold(events)

    assert view(state)["subscription_status"] == "active"  # the unpaid event was stale
    assert of_type(effects, DunningLost) == [DunningLost("in_test1")]
    assert view(state)["payment_state"] == "ok"


def test_failure_after_an_earlier_unpaid_spell_opens_normally() -> None:
    events = [
        subscription_event("customer.subscription.updated", created=1_000, status="unpaid"),
        subscription_event("customer.subscription.updated", created=2_000, status="active"),
        invoice_event(FAILED, created=3_000),
    ]
    state, effects = fold(events)

    assert of_type(effects, DunningLost) == []
    assert view(state)["payment_state"] == "past_due"


def test_invoice_learns_its_subscription_from_a_later_event() -> None:
    events = [
        subscription_event("customer.subscription.deleted", created=500),
        invoice_event(FAILED, created=1_000, subscription_id=None),
    ]
    state, effects = fold(events)
    assert view(state)["payment_state"] == "past_due"  # a one-off invoice as far as we know

    state, effects = fold([invoice_event(FAILED, created=1_100)], state)
    assert of_type(effects, DunningLost) == [DunningLost("in_test1")]
    assert view(state)["payment_state"] == "ok"


def test_expanded_subscription_object_on_the_invoice() -> None:
    event = invoice_event(FAILED, created=1_000)
    event["data"]["object"]["subscription"] = {"id": "sub_expanded", "object": "subscription"}
    state, _ = fold([event])

    assert state.invoices["in_test1"].subscription_id == "sub_expanded"


def test_upcoming_invoice_without_id_changes_nothing() -> None:
    state, effects = fold([invoice_event("invoice.upcoming", created=1_000)])

    assert effects == []
    assert state.account_view() is None
    assert state.invoices == {}
