"""Replays within Stripe's 30-day event retention (`billstream backfill`, Stripe's retries),
after the de-duplication horizon forgot their ids: they change nothing (docs/state.md,
"Late and replayed events")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from billstream.processors import effects as fx
from billstream.tables.codec import decode_customer, encode_customer
from billstream.tables.state import CustomerState
from tests.support import factories as f
from tests.unit.processors.support import CONFIG, fold, of_type, view
from tests.unit.processors.test_properties import Event, histories

DAY = 86400
WINDOW = 30 * DAY  # Stripe keeps events 30 days: what backfill can republish


def test_an_old_failure_replayed_after_the_payment_does_not_reopen_dunning() -> None:
    failed = f.invoice_event("invoice.payment_failed", created=0, invoice_id="in_1")
    paid = f.invoice_event("invoice.paid", created=DAY, invoice_id="in_1")
    later = f.customer_event("customer.updated", created=29 * DAY)
    state, _ = fold([failed, paid, later])
    assert failed["id"] not in state.seen  # past the 7-day de-duplication horizon

    replayed, effects = fold([failed], state)

    assert view(replayed)["payment_state"] == "ok"
    assert of_type(effects, fx.DunningEntered) == []
    assert of_type(effects, fx.EpisodeChanged) == []
    assert "in_1" not in replayed.invoices
    assert replayed.closed_invoices == state.closed_invoices == {"in_1": (DAY, "paid")}


def test_closed_invoices_are_forgotten_after_their_own_retention() -> None:
    paid = f.invoice_event("invoice.paid", created=0, invoice_id="in_1")
    later = f.customer_event(
        "customer.updated", created=CONFIG.closed_invoice_retention_seconds + 1
    )
    state, _ = fold([paid, f.customer_event("customer.updated", created=20 * DAY)])
    assert "in_1" not in state.invoices  # forgotten with the de-duplication horizon, as before
    assert state.closed_invoices == {"in_1": (0, "paid")}  # but buried

    state, _ = fold([later], state)

    assert state.closed_invoices == {}


def test_an_old_update_replayed_after_newer_ones_does_not_roll_back() -> None:
    old = f.subscription_event(created=0, status="trialing")
    new = f.subscription_event(created=DAY, status="active")
    state, _ = fold([old, new, f.customer_event("customer.updated", created=20 * DAY)])

    replayed, effects = fold([old], state)

    assert replayed.subscriptions[f.SUBSCRIPTION].status == "active"
    assert of_type(effects, fx.Stale) == [fx.Stale(f.SUBSCRIPTION)]
    assert of_type(effects, fx.AccountChanged) == []


def _comparable(state: CustomerState) -> bytes:
    return encode_customer(state)


@settings(max_examples=150)
@given(histories(), st.data())
def test_any_history_replayed_in_any_order_within_30_days_changes_nothing(
    history: list[Event], data: st.DataObject
) -> None:
    first = min(e["created"] for e in history)
    last = max(e["created"] for e in history)
    at = data.draw(st.integers(last, first + WINDOW), label="replayed at")
    state, _ = fold([*history, f.customer_event("customer.updated", created=at)])
    before = _comparable(state)
    order = data.draw(st.permutations(history), label="replay order")

    replayed, effects = fold(order, state)

    assert _comparable(replayed) == before
    assert of_type(effects, fx.EpisodeChanged) == []
    assert of_type(effects, fx.AccountChanged) == []
    decoded = decode_customer(encode_customer(replayed))
    assert decoded is not None
    assert _comparable(decoded) == before
