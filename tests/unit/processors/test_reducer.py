"""The reducer's envelope: de-duplication, retention, purity, event types without rules, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from billstream.processors.effects import (
    CheckoutCompleted,
    Duplicate,
    SubscriptionEvent,
)
from billstream.processors.parsing import InvalidEvent
from billstream.processors.reducer import ReducerConfig, apply
from billstream.settings import Settings
from tests.support.factories import (
    checkout_completed,
    customer_event,
    invoice_event,
    subscription_event,
)
from tests.support.settings import SettingsFactory
from tests.unit.processors.support import CONFIG, fold, view

DAY = 86400


def test_config_from_settings(make_settings: SettingsFactory) -> None:
    settings: Settings = make_settings(
        billing_plan_map="pro_monthly=PRO,price_1=BUSINESS",
        billing_default_plan="FREE",
        billing_plan_order="FREE,PRO,BUSINESS",
        dedup_retention_seconds=4 * DAY,
    )
    config = ReducerConfig.from_settings(settings)

    assert config.plan_map == {"pro_monthly": "PRO", "price_1": "BUSINESS"}
    assert config.plan_order == ("FREE", "PRO", "BUSINESS")
    assert config.default_plan == "FREE"
    assert config.dedup_retention_seconds == 4 * DAY
    assert [config.tier(p) for p in ("FREE", "BUSINESS", "GOLD", None)] == [0, 2, -1, -1]


def test_duplicate_event_changes_nothing() -> None:
    event = invoice_event("invoice.payment_failed", created=1_000)
    state, _ = fold([event])

    again, effects = apply(state, copy.deepcopy(event), CONFIG)

    assert effects == [Duplicate(event["id"])]
    assert again is state


def test_ids_without_rules_are_remembered_too() -> None:
    event = invoice_event("invoice.finalized", created=1_000)
    state, effects = fold([event])

    assert effects == []
    assert state.seen == {event["id"]: 1_000}
    assert apply(state, event, CONFIG)[1] == [Duplicate(event["id"])]


def test_apply_never_mutates_its_input_state() -> None:
    state, _ = fold([subscription_event("customer.subscription.created", created=100)])
    before = copy.deepcopy(state.to_dict())

    fold(
        [
            invoice_event("invoice.payment_failed", created=200),
            subscription_event("customer.subscription.deleted", created=300),
            customer_event("customer.deleted", created=400),
        ],
        state,
    )

    assert state.to_dict() == before


def test_replaying_the_same_events_yields_identical_state() -> None:
    events = [
        subscription_event("customer.subscription.created", created=100),
        invoice_event("invoice.payment_failed", created=200),
        invoice_event("invoice.paid", created=300),
    ]
    first, first_effects = fold(copy.deepcopy(events))
    second, second_effects = fold(copy.deepcopy(events))

    assert first.to_dict() == second.to_dict()
    assert first_effects == second_effects


def test_ids_older_than_the_retention_are_forgotten() -> None:
    config = ReducerConfig(plan_map=CONFIG.plan_map, dedup_retention_seconds=3 * DAY)
    old = invoice_event("invoice.finalized", created=1_000)
    recent = invoice_event("invoice.finalized", created=1_000 + 2 * DAY)
    state, _ = fold([old, recent], config=config)
    assert set(state.seen) == {old["id"], recent["id"]}

    newest = invoice_event("invoice.finalized", created=1_000 + 3 * DAY + 1)
    state, _ = fold([newest], state, config=config)

    assert set(state.seen) == {recent["id"], newest["id"]}
    assert state.newest_created == 1_000 + 3 * DAY + 1


def test_closed_invoices_are_forgotten_after_the_retention_open_ones_kept() -> None:
    events = [
        invoice_event("invoice.payment_failed", created=0, invoice_id="in_open"),
        invoice_event("invoice.paid", created=0, invoice_id="in_paid"),
        invoice_event("invoice.paid", created=7 * DAY, invoice_id="in_recent"),
        invoice_event("invoice.finalized", created=7 * DAY + 1, invoice_id="in_x"),
    ]
    state, _ = fold(events)

    assert set(state.invoices) == {"in_open", "in_recent"}
    assert state.closed_invoices == {"in_paid": (0, "paid")}  # a tombstone (35 days)
    assert view(state)["payment_state"] == "past_due"


def test_an_older_event_does_not_move_the_newest_time_back() -> None:
    state, _ = fold(
        [
            invoice_event("invoice.finalized", created=5_000),
            invoice_event("invoice.finalized", created=1_000),
        ]
    )

    assert state.newest_created == 5_000


def test_customer_id_is_the_routing_key() -> None:
    state, _ = fold([invoice_event("invoice.payment_failed", created=1, customer="cus_route")])
    assert state.customer_id == "cus_route"

    state, _ = fold([customer_event("customer.deleted", created=1, customer="cus_self")])
    assert state.customer_id == "cus_self"


def test_checkout_completed_is_counted_without_changing_state() -> None:
    state, effects = fold([checkout_completed(created=100)])

    assert effects == [CheckoutCompleted()]
    assert state.account_view() is None


@pytest.mark.parametrize(
    ("event_type", "label"),
    [
        ("customer.subscription.trial_will_end", "customer.subscription.trial_will_end"),
        ("customer.subscription.something_new", "other"),
    ],
)
def test_subscription_events_without_rules_are_counted_with_bounded_labels(
    event_type: str, label: str
) -> None:
    event = subscription_event(event_type, created=100, status="canceled")
    state, effects = fold([event])

    assert effects == [SubscriptionEvent(label)]
    assert state.subscriptions == {}


@pytest.mark.parametrize(
    "event_type",
    ["customer.updated", "customer.created", "invoice.created", "invoice.finalized", "ping"],
)
def test_event_types_without_rules_are_not_errors(event_type: str) -> None:
    state, _ = fold([subscription_event("customer.subscription.created", created=100)])
    event = subscription_event(created=200, status="canceled")
    event["type"] = event_type

    after, effects = apply(state, event, CONFIG)

    assert effects == []
    assert after.account_view() == state.account_view()
    assert after.subscriptions == state.subscriptions


def _break(event: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(event)
    target = broken
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return broken


_DELETE = object()
SUB = subscription_event("customer.subscription.updated", created=100)
INV = invoice_event("invoice.payment_failed", created=100)


@pytest.mark.parametrize(
    ("event", "path", "value", "reason"),
    [
        (SUB, ["id"], _DELETE, "missing_field"),
        (SUB, ["id"], "", "missing_field"),
        (SUB, ["id"], 12, "bad_type"),
        (SUB, ["type"], None, "missing_field"),
        (SUB, ["created"], _DELETE, "missing_field"),
        (SUB, ["created"], "100", "bad_type"),
        (SUB, ["created"], True, "bad_type"),
        (SUB, ["data"], _DELETE, "missing_field"),
        (SUB, ["data"], [], "bad_type"),
        (SUB, ["data", "object"], _DELETE, "missing_field"),
        (SUB, ["data", "object"], "sub_1", "bad_type"),
        (SUB, ["data", "object", "id"], _DELETE, "missing_field"),
        (SUB, ["data", "object", "status"], _DELETE, "missing_field"),
        (SUB, ["data", "object", "status"], 3, "bad_type"),
        (SUB, ["data", "object", "current_period_end"], "soon", "bad_type"),
        (SUB, ["data", "object", "cancel_at_period_end"], "yes", "bad_type"),
        (SUB, ["data", "object", "metadata"], "pending", "bad_type"),
        (SUB, ["data", "object", "metadata", "pending_plan"], 1, "bad_type"),
        (SUB, ["data", "object", "items"], [], "bad_type"),
        (SUB, ["data", "object", "items", "data"], {}, "bad_type"),
        (SUB, ["data", "object", "items", "data"], ["si_1"], "bad_type"),
        (SUB, ["data", "object", "items", "data", 0, "price"], "price_1", "bad_type"),
        (SUB, ["data", "object", "items", "data", 0, "price", "lookup_key"], 5, "bad_type"),
        (INV, ["data", "object", "id"], _DELETE, "missing_field"),
        (INV, ["data", "object", "subscription"], 7, "bad_type"),
        (INV, ["data", "object", "subscription"], {"id": 7}, "bad_type"),
    ],
)
def test_malformed_events_raise_invalid_event_with_a_bounded_reason(
    event: dict[str, Any], path: list[Any], value: Any, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        apply(None, _break(event, path, value), CONFIG)

    assert raised.value.reason == reason


@pytest.mark.parametrize("event", [None, [], "evt_1", 42])
def test_non_objects_raise_not_object(event: Any) -> None:
    with pytest.raises(InvalidEvent) as raised:
        apply(None, event, CONFIG)

    assert raised.value.reason == "not_object"


def test_invalid_event_leaves_the_state_untouched() -> None:
    state, _ = fold([subscription_event("customer.subscription.created", created=100)])
    before = copy.deepcopy(state.to_dict())
    bad = _break(SUB, ["data", "object", "status"], 3)

    with pytest.raises(InvalidEvent):
        apply(state, bad, CONFIG)

    assert state.to_dict() == before
