"""billing.invoice-episodes records and decline codes, whatever the delivery order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from billstream.processors.declines import DECLINE_CODES, OTHER, from_charge, from_invoice
from billstream.processors.effects import EpisodeChanged
from billstream.processors.episodes import current_episodes
from billstream.tables.state import CustomerState
from tests.support.factories import event, invoice, invoice_event, subscription_event
from tests.unit.processors.support import fold, of_type

FAILED = "invoice.payment_failed"
ACTION = "invoice.payment_action_required"
PAID = "invoice.paid"


def episodes(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.episode for e in of_type(effects, EpisodeChanged)]


def latest(state: CustomerState) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["invoice_id"], e["kind"]): e for e in current_episodes(state)}


def intent_failed(code: str, created: int, invoice_id: str = "in_test1") -> dict[str, Any]:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "customer": "cus_test1",
        "invoice": invoice_id,
        "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": code},
    }
    return event("payment_intent.payment_failed", intent, created=created)


def test_a_dunning_episode_opens_counts_attempts_and_recovers() -> None:
    start = [subscription_event("customer.subscription.created", created=100)]
    state, _ = fold(start)
    state, effects = fold([invoice_event(FAILED, created=1_000, attempt_count=1)], state)
    (opened,) = episodes(effects)
    assert opened == {
        "invoice_id": "in_test1",
        "kind": "dunning",
        "customer_id": "cus_test1",
        "subscription_id": "sub_test1",
        "state": "open",
        "opened_at": 1_000,
        "closed_at": None,
        "attempts": 1,
        "decline_code": None,
        "plan": "PRO",  # the plan the customer had when the payment failed
        "version": 1,
    }
    state, effects = fold([invoice_event(FAILED, created=2_000, attempt_count=2)], state)
    assert [(e["attempts"], e["version"]) for e in episodes(effects)] == [(2, 2)]
    state, effects = fold([invoice_event(PAID, created=5_000)], state)
    (closed,) = episodes(effects)
    assert (closed["state"], closed["opened_at"], closed["closed_at"]) == (
        "recovered",
        1_000,
        5_000,
    )
    assert (closed["attempts"], closed["plan"], closed["version"]) == (2, "PRO", 3)


def test_an_invoice_with_both_kinds_has_two_records_and_sca_completes() -> None:
    state, effects = fold(
        [
            invoice_event(ACTION, created=1_000),
            invoice_event(FAILED, created=1_000),
            invoice_event(PAID, created=1_300),
        ]
    )
    final = latest(state)
    assert final["in_test1", "sca"]["state"] == "completed"
    assert final["in_test1", "dunning"]["state"] == "recovered"
    assert {e["kind"] for e in episodes(effects)} == {"dunning", "sca"}


def test_a_lost_episode_stays_lost_when_paid_later() -> None:
    state, _ = fold(
        [
            invoice_event(FAILED, created=1_000),
            invoice_event("invoice.marked_uncollectible", created=2_000),
        ]
    )
    state, effects = fold([invoice_event(PAID, created=3_000)], state)
    assert episodes(effects) == []
    assert latest(state)["in_test1", "dunning"]["state"] == "lost"


def test_a_duplicate_emits_nothing_new() -> None:
    failed = invoice_event(FAILED, created=1_000)
    state, _ = fold([failed])
    again, effects = fold([failed], state)
    assert episodes(effects) == []
    assert again is state


def test_decline_code_of_a_payment_intent_before_or_after_the_invoice_event() -> None:
    events = [intent_failed("insufficient_funds", 1_000), invoice_event(FAILED, created=1_000)]
    finals = []
    for order in itertools.permutations(events):
        state, _ = fold(order)
        finals.append(latest(state)["in_test1", "dunning"])
    assert all(f["decline_code"] == "insufficient_funds" for f in finals)
    # The same record but for its version (how many records led to it).
    assert {**finals[0], "version": 0} == {**finals[1], "version": 0}


def test_the_latest_attempts_reason_wins_in_any_order() -> None:
    events = [
        invoice_event(FAILED, created=1_000),
        intent_failed("insufficient_funds", 1_000),
        intent_failed("expired_card", 90_000),
        invoice_event(FAILED, created=90_000, attempt_count=2),
    ]
    codes = set()
    for order in itertools.permutations(events):
        state, _ = fold(order)
        found = latest(state)["in_test1", "dunning"]
        codes.add((found["decline_code"], found["attempts"], found["opened_at"]))
    assert codes == {("expired_card", 2, 1_000)}


def test_undocumented_codes_are_other_and_labels_stay_bounded() -> None:
    state, _ = fold([invoice_event(FAILED, created=1), intent_failed("brand_new_code", 1)])
    assert latest(state)["in_test1", "dunning"]["decline_code"] == OTHER
    assert "insufficient_funds" in DECLINE_CODES


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            {"payment_intent": {"last_payment_error": {"decline_code": "do_not_honor"}}},
            "do_not_honor",
        ),
        ({"payment_intent": {"last_payment_error": {"code": "expired_card"}}}, "expired_card"),
        ({"payment_intent": "pi_unexpanded", "charge": "ch_unexpanded"}, None),
        (
            {"charge": {"failure_code": "card_declined", "outcome": {"reason": "fraudulent"}}},
            "fraudulent",
        ),
        (
            {
                "payments": {
                    "data": [
                        {
                            "payment": {
                                "payment_intent": {
                                    "last_payment_error": {"decline_code": "lost_card"}
                                }
                            }
                        }
                    ]
                }
            },
            "lost_card",
        ),
    ],
)
def test_reasons_an_invoice_payload_can_carry(payload: dict[str, Any], code: str | None) -> None:
    assert from_invoice({**invoice(), **payload}) == code


def test_a_charge_without_a_documented_reason() -> None:
    assert from_charge({"failure_code": "card_declined"}) == OTHER
    assert from_charge({}) is None


def test_a_basil_payment_intent_without_invoice_changes_nothing() -> None:
    intent = {"id": "pi_1", "object": "payment_intent", "customer": "cus_test1"}
    state, effects = fold([event("payment_intent.payment_failed", intent, created=1)])
    assert state.invoices == {}
    assert episodes(effects) == []


def test_a_reason_no_episode_took_is_forgotten_after_the_horizon() -> None:
    state, _ = fold([intent_failed("insufficient_funds", 1_000, invoice_id="in_other")])
    assert "in_other" in state.invoices
    state, _ = fold([invoice_event(FAILED, created=1_000 + 8 * 86400)], state)
    assert "in_other" not in state.invoices
