"""Partial payments and invoice notices: only an invoice paid in full closes its episodes."""

from __future__ import annotations

import itertools

import pytest

from billstream.processors.effects import (
    AccountChanged,
    DunningRecovered,
    InvoiceNotice,
    InvoicePaid,
    InvoicePartiallyPaid,
    ScaCompleted,
)
from billstream.processors.payments import NOTICE_TYPES, paid_in_full
from billstream.tables.state import CustomerState, InvoiceState, evolve
from tests.support.billing_events import (
    invoice_payment_event,
    paid_invoice_event,
    partial_invoice_event,
)
from tests.support.factories import invoice_event, subscription_event
from tests.unit.processors.support import fold, of_type, view

FAILED = "invoice.payment_failed"
ACTION = "invoice.payment_action_required"
STAMPS = ("version", "updated_by_event", "updated_by_event_type", "updated_at")


def derived(account: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in account.items() if k not in STAMPS}


@pytest.mark.parametrize("event_type", ["invoice.paid", "invoice.payment_succeeded"])
def test_a_part_payment_keeps_dunning_open_until_the_invoice_is_paid_in_full(
    event_type: str,
) -> None:
    state, _ = fold([invoice_event(FAILED, created=1_000, shape="basil")])
    part = partial_invoice_event(event_type, created=2_000, amount_paid=1_000, shape="basil")

    state, effects = fold([part], state)
    assert view(state)["payment_state"] == "past_due"
    assert state.invoices["in_test1"].dunning_since == 1_000
    assert of_type(effects, InvoicePartiallyPaid) == [InvoicePartiallyPaid("in_test1")]
    assert of_type(effects, InvoicePaid) == []
    assert of_type(effects, AccountChanged) == []

    state, effects = fold([paid_invoice_event("invoice.paid", created=5_000)], state)
    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, DunningRecovered) == [DunningRecovered("in_test1", 4_000)]
    assert of_type(effects, InvoicePaid) == [InvoicePaid("in_test1")]


def test_a_part_payment_after_3ds_keeps_the_sca_episode_open() -> None:
    events = [
        invoice_event(ACTION, created=1_000),
        partial_invoice_event("invoice.payment_succeeded", created=1_500, amount_paid=900),
    ]
    state, effects = fold(events)
    assert view(state)["payment_state"] == "requires_action"
    assert of_type(effects, ScaCompleted) == []

    state, effects = fold([invoice_event("invoice.paid", created=1_800)], state)
    assert view(state)["payment_state"] == "ok"
    assert of_type(effects, ScaCompleted) == [ScaCompleted("in_test1", 800)]


def test_a_part_payment_of_an_invoice_without_episode_records_nothing() -> None:
    state, effects = fold(
        [
            subscription_event("customer.subscription.created", created=100),
            partial_invoice_event("invoice.paid", created=200, amount_paid=100),
        ]
    )
    assert state.invoices == {}
    assert of_type(effects, InvoicePartiallyPaid) == [InvoicePartiallyPaid("in_test1")]


@pytest.mark.parametrize(
    ("fields", "full"),
    [
        ({}, True),  # shapes before basil, or a payload without amounts
        ({"status": "paid", "amount_remaining": 0}, True),
        ({"status": "paid"}, True),  # paid out of band
        ({"status": "open", "amount_remaining": 1900}, False),
        ({"amount_remaining": 1}, False),
        ({"status": "open"}, False),
        ({"status": "paid", "amount_remaining": -5}, True),  # never negative; not "remaining"
    ],
)
def test_paid_in_full_reads_amount_remaining_and_status(
    fields: dict[str, object], full: bool
) -> None:
    assert paid_in_full(fields) is full


def test_every_order_of_a_part_paid_dunning_story_gives_one_state() -> None:
    story = [
        subscription_event("customer.subscription.created", created=100, period="items"),
        invoice_event(FAILED, created=1_000, shape="basil"),
        partial_invoice_event("invoice.payment_succeeded", created=2_000, amount_paid=1_000),
        invoice_event(FAILED, created=3_000, shape="basil", attempt_count=2),
        partial_invoice_event("invoice.payment_succeeded", created=4_000, amount_paid=2_000),
        paid_invoice_event("invoice.paid", created=5_000),
        paid_invoice_event("invoice.payment_succeeded", created=5_000),
    ]
    expected, _ = fold(story)
    assert view(expected)["payment_state"] == "ok"
    assert expected.invoices["in_test1"].outcome == "paid"
    for order in itertools.permutations(story):
        state, _ = fold(order)
        assert derived(view(state)) == derived(view(expected))
        # The same invoice record but for how many episode records led to it.
        assert unversioned(state) == unversioned(expected)


def unversioned(state: CustomerState) -> dict[str, InvoiceState]:
    return {k: evolve(v, episode_version=0) for k, v in state.invoices.items()}


def test_a_part_payment_never_reopens_or_closes_whatever_arrives_first() -> None:
    # Paid in full first, then a late failure and a late part payment: still closed, paid.
    events = [
        paid_invoice_event("invoice.paid", created=5_000),
        invoice_event(FAILED, created=1_000, shape="basil"),
        partial_invoice_event("invoice.payment_succeeded", created=2_000, amount_paid=1_000),
    ]
    state, _ = fold(events)
    assert state.invoices["in_test1"].outcome == "paid"
    assert view(state)["payment_state"] == "ok"


@pytest.mark.parametrize("event_type", ["invoice.payment_attempt_required", "invoice.overdue"])
def test_notices_are_counted_and_open_no_episode(event_type: str) -> None:
    state, _ = fold([subscription_event("customer.subscription.created", created=100)])
    before = view(state)

    state, effects = fold([invoice_event(event_type, created=200)], state)
    assert effects == [InvoiceNotice(event_type)]
    assert view(state) == before
    assert state.invoices == {}


def test_a_notice_during_dunning_neither_extends_nor_closes_it() -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        invoice_event("invoice.overdue", created=500),  # earlier than the failure
        invoice_event("invoice.will_be_due", created=2_000),
    ]
    for order in itertools.permutations(events):
        state, _ = fold(order)
        assert state.invoices["in_test1"].dunning_since == 1_000
        assert view(state)["payment_state"] == "past_due"


def test_a_notice_for_a_customer_never_seen_creates_no_account() -> None:
    state, effects = fold([invoice_event("invoice.will_be_due", created=100)])
    assert effects == [InvoiceNotice("invoice.will_be_due")]
    assert state.account_view() is None


def test_invoice_payment_paid_is_counted_without_state() -> None:
    # The Invoice Payment object has no `customer`: routing keys it by its own id, so it cannot
    # be folded into the customer's state (docs/state.md, "Partial payments").
    payment = invoice_payment_event(created=100)
    state, effects = fold([payment])
    assert effects == [InvoiceNotice("invoice_payment.paid")]
    assert state.customer_id == payment["data"]["object"]["id"]
    assert state.account_view() is None
    assert state.invoices == {}


def test_notice_types_are_bounded_and_known() -> None:
    assert set(NOTICE_TYPES) == {
        "invoice.overdue",
        "invoice.payment_attempt_required",
        "invoice.will_be_due",
        "invoice_payment.paid",
    }
