"""The aggregate's codec: JSON-safe, stable, lossless."""

from __future__ import annotations

import orjson
import pytest

from billstream.tables.state import CustomerState
from tests.support.factories import (
    business_monthly,
    customer_event,
    invoice_event,
    subscription_event,
)
from tests.unit.processors.support import fold


def _rich_state() -> CustomerState:
    state, _ = fold(
        [
            subscription_event("customer.subscription.created", created=100, sub_id="sub_b"),
            subscription_event(
                "customer.subscription.created",
                created=110,
                sub_id="sub_a",
                prices=[business_monthly()],
                pending_plan="PRO",
                cancel_at_period_end=True,
            ),
            subscription_event("customer.subscription.deleted", created=120, sub_id="sub_b"),
            invoice_event("invoice.payment_failed", created=130, invoice_id="in_2"),
            invoice_event("invoice.payment_action_required", created=140, invoice_id="in_1"),
            invoice_event("invoice.paid", created=150, invoice_id="in_3"),
            customer_event("customer.deleted", created=160),
        ]
    )
    return state


def test_round_trip_through_json_is_lossless() -> None:
    state = _rich_state()

    restored = CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))

    assert restored == state
    assert restored.account_view() == state.account_view()


def test_to_dict_is_stable_whatever_the_insertion_order() -> None:
    state = _rich_state()
    shuffled = state.clone()
    shuffled.subscriptions = dict(reversed(state.subscriptions.items()))
    shuffled.invoices = dict(reversed(state.invoices.items()))
    shuffled.seen = dict(reversed(state.seen.items()))

    assert orjson.dumps(shuffled.to_dict()) == orjson.dumps(state.to_dict())


def test_clone_does_not_share_containers() -> None:
    state = _rich_state()
    copy = state.clone()
    copy.seen["evt_new"] = 1
    copy.subscriptions.clear()
    copy.invoices.clear()

    assert "evt_new" not in state.seen
    assert state.subscriptions
    assert state.invoices


def test_new_customer_has_no_account_view() -> None:
    assert CustomerState("cus_1").account_view() is None


def test_unknown_schema_is_refused() -> None:
    data = _rich_state().to_dict()
    data["schema"] = 999

    with pytest.raises(ValueError, match="schema"):
        CustomerState.from_dict(data)
