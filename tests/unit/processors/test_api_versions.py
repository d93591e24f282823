"""Every supported API version's payloads, built by the shapes Stripe documents for it
(billstream/simulate/versions.py), read alike; what a shape leaves out is never a wipe, and
what no version sends is a bounded InvalidEvent, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from billstream.processors import effects as fx
from billstream.processors.dlq import DLQ_REASONS
from billstream.processors.reducer import InvalidEvent, ReducerConfig, apply
from billstream.simulate import catalog, events, versions
from billstream.tables.state import SubscriptionState
from tests.unit.processors.support import fold, of_type, view

# Lookup keys and price ids both map, so a price without a lookup_key grants the same plan.
CONFIG = ReducerConfig(
    plan_map={
        **{p.lookup_key: p.plan for p in catalog.PRICES if p.lookup_key},
        **{p.id: p.plan for p in catalog.PRICES},
    }
)
Json = dict[str, Any]


def sub_event(version: str, event_type: str, created: int, **changes: Any) -> Json:
    fields: dict[str, Any] = {
        "customer_id": "cus_1",
        "item_id": "si_1",
        "price": catalog.BUSINESS_YEARLY,
        "status": "active",
        "created": 100,
        "current_period_start": 100,
        "current_period_end": 5_000,
        "cancel_at_period_end": True,
        "pending_plan": "PRO",
    }
    fields.update(changes)
    obj = events.subscription("sub_1", api_version=version, **fields)
    return events.event(
        f"evt_{event_type}_{created}", event_type, obj, created, api_version=version
    )


def invoice_event(version: str, event_type: str, created: int, **changes: Any) -> Json:
    fields: dict[str, Any] = {
        "customer_id": "cus_1",
        "subscription_id": "sub_1",
        "price": catalog.BUSINESS_YEARLY,
        "status": "open",
        "billing_reason": "subscription_cycle",
        "created": created,
        "period_start": 100,
        "period_end": 5_000,
        "amount_due": 99000,
        "api_version": version,
    }
    fields.update(changes)
    obj = events.invoice("in_1", **fields)
    return events.event(
        f"evt_{event_type}_{created}", event_type, obj, created, api_version=version
    )


EXPECTED = SubscriptionState(
    id="sub_1",
    status="active",
    plan="BUSINESS",
    last_event_created=100,
    price="business_yearly",
    interval="year",
    current_period_end=5_000,
    cancel_at_period_end=True,
    pending_plan="PRO",
)


@pytest.mark.parametrize("version", versions.SUPPORTED)
def test_a_subscription_reads_the_same_in_every_version(version: str) -> None:
    state, effects = fold([sub_event(version, "customer.subscription.created", 100)], config=CONFIG)

    assert state.subscriptions["sub_1"] == EXPECTED
    assert view(state)["plan"] == "BUSINESS"
    assert not of_type(effects, fx.UnknownPrice)


@pytest.mark.parametrize("version", versions.SUPPORTED)
def test_an_invoice_names_its_subscription_in_every_version(version: str) -> None:
    history = [
        sub_event(version, "customer.subscription.created", 100),
        invoice_event(version, "invoice.payment_failed", 200),
        sub_event(version, "customer.subscription.deleted", 300, status="canceled"),
    ]
    state, effects = fold(history, config=CONFIG)

    assert state.invoices["in_1"].subscription_id == "sub_1"
    # The link is what loses the episode when the subscription ends.
    assert of_type(effects, fx.DunningLost) == [fx.DunningLost("in_1")]


@pytest.mark.parametrize("version", versions.SUPPORTED)
def test_a_quote_invoice_has_no_subscription(version: str) -> None:
    failed = invoice_event(
        version, "invoice.payment_failed", 200, subscription_id=None, quote_id="qt_1"
    )
    state, _ = fold([failed], config=CONFIG)

    assert state.invoices["in_1"].subscription_id is None
    assert view(state)["payment_state"] == "past_due"


def test_the_shapes_differ_where_stripe_says() -> None:
    acacia = sub_event("2024-12-18.acacia", "customer.subscription.created", 100)["data"]["object"]
    basil = sub_event("2025-03-31.basil", "customer.subscription.created", 100)["data"]["object"]
    assert acacia["current_period_end"] == 5_000
    assert "current_period_end" not in acacia["items"]["data"][0]
    assert "current_period_end" not in basil
    assert basil["items"]["data"][0]["current_period_end"] == 5_000
    old = invoice_event("2024-06-20", "invoice.paid", 200)["data"]["object"]
    new = invoice_event(versions.NEWEST, "invoice.paid", 200)["data"]["object"]
    assert (old["subscription"], "parent" in old) == ("sub_1", False)
    assert new["parent"]["subscription_details"]["subscription"] == "sub_1"
    assert "subscription" not in new


def test_a_legacy_item_with_only_a_plan_maps_by_plan_id_and_interval() -> None:
    event = sub_event("2020-08-27", "customer.subscription.created", 100)
    item = event["data"]["object"]["items"]["data"][0]
    del item["price"]

    state, effects = fold([event], config=CONFIG)

    record = state.subscriptions["sub_1"]
    assert (record.plan, record.price, record.interval) == (
        "BUSINESS",
        catalog.BUSINESS_YEARLY.id,
        "year",
    )
    assert not of_type(effects, fx.UnknownPrice)


def test_a_legacy_single_plan_subscription_without_items_uses_its_plan() -> None:
    event = sub_event("2020-08-27", "customer.subscription.created", 100)
    obj = event["data"]["object"]
    obj["plan"] = obj.pop("items")["data"][0]["plan"]

    state, _ = fold([event], config=CONFIG)

    assert (state.subscriptions["sub_1"].plan, state.subscriptions["sub_1"].interval) == (
        "BUSINESS",
        "year",
    )


@pytest.mark.parametrize("version", ["2022-11-15", versions.NEWEST])
def test_a_price_without_lookup_key_maps_by_its_id(version: str) -> None:
    event = sub_event(version, "customer.subscription.created", 100)
    event["data"]["object"]["items"]["data"][0]["price"]["lookup_key"] = None

    state, _ = fold([event], config=CONFIG)

    assert state.subscriptions["sub_1"].plan == "BUSINESS"
    assert state.subscriptions["sub_1"].price == catalog.BUSINESS_YEARLY.id


@pytest.mark.parametrize(
    "anchor",
    [100, {"type": "timestamp", "timestamp": 100}, {"type": "now"}, "unchanged", None],
)
def test_billing_cycle_anchor_in_any_form_changes_nothing(anchor: object) -> None:
    event = sub_event(versions.NEWEST, "customer.subscription.created", 100)
    event["data"]["object"]["billing_cycle_anchor"] = anchor

    state, _ = fold([event], config=CONFIG)

    assert state.subscriptions["sub_1"] == EXPECTED


def test_billing_mode_is_rendered_from_basil_and_ignored() -> None:
    modes = {
        v: sub_event(v, "customer.subscription.created", 100)["data"]["object"].get("billing_mode")
        for v in versions.SUPPORTED
    }
    assert modes["2025-03-31.basil"] is None
    assert modes["2025-06-30.basil"]["type"] == "classic"
    assert modes["2025-09-30.clover"]["type"] == "flexible"
    assert modes[versions.NEWEST]["type"] == "flexible"


def test_a_payload_without_items_or_period_keeps_what_was_known() -> None:
    later = sub_event(versions.NEWEST, "customer.subscription.updated", 200, status="past_due")
    del later["data"]["object"]["items"]
    state, effects = fold(
        [sub_event("2024-06-20", "customer.subscription.created", 100), later], config=CONFIG
    )

    record = state.subscriptions["sub_1"]
    assert (record.status, record.plan, record.price, record.interval) == (
        "past_due", "BUSINESS", "business_yearly", "year",
    )  # fmt: skip
    assert record.current_period_end == 5_000
    assert not of_type(effects, fx.UnknownPrice)


def test_a_first_payload_without_items_grants_the_default_plan() -> None:
    event = sub_event(versions.NEWEST, "customer.subscription.created", 100)
    del event["data"]["object"]["items"]

    state, effects = fold([event], config=CONFIG)

    assert (state.subscriptions["sub_1"].plan, state.subscriptions["sub_1"].current_period_end) == (
        "FREE",
        None,
    )
    assert of_type(effects, fx.UnknownPrice) == [fx.UnknownPrice("sub_1", None)]


def test_a_shown_period_end_replaces_the_known_one() -> None:
    history = [
        sub_event("2024-06-20", "customer.subscription.created", 100),
        sub_event(versions.NEWEST, "customer.subscription.updated", 200, current_period_end=9_000),
    ]
    state, _ = fold(history, config=CONFIG)

    assert state.subscriptions["sub_1"].current_period_end == 9_000


def _subscription(version: str) -> Json:
    return sub_event(version, "customer.subscription.updated", 100)


def _item(event: Json) -> Json:
    item: Json = event["data"]["object"]["items"]["data"][0]
    return item


BAD_SHAPES = [
    ("items.data[] not an object", lambda e: e["data"]["object"]["items"].update(data=["si_1"])),
    ("items not an object", lambda e: e["data"]["object"].update(items=["si_1"])),
    ("price not an object", lambda e: _item(e).update(price=["price_1"])),
    ("plan not an object", lambda e: (_item(e).pop("price"), _item(e).update(plan=7))),
    ("period end a string", lambda e: _item(e).update(current_period_end="soon")),
    ("lookup_key a number", lambda e: _item(e)["price"].update(lookup_key=3)),
    ("interval an object", lambda e: _item(e)["price"]["recurring"].update(interval={})),
]


@pytest.mark.parametrize(("case", "spoil"), BAD_SHAPES, ids=[c for c, _ in BAD_SHAPES])
def test_a_subscription_of_no_version_is_a_bounded_invalid_event(case: str, spoil: Any) -> None:
    event = _subscription(versions.NEWEST)
    spoil(event)
    with pytest.raises(InvalidEvent) as raised:
        apply(None, event, CONFIG)
    assert raised.value.reason == "bad_type"
    assert raised.value.reason in DLQ_REASONS


BAD_INVOICES = [
    ("parent a string", lambda o: o.update(parent="sub_1")),
    ("subscription_details a list", lambda o: o["parent"].update(subscription_details=[])),
    ("subscription a number", lambda o: o["parent"]["subscription_details"].update(subscription=1)),
    ("old subscription a list", lambda o: o.update(subscription=["sub_1"])),
]


@pytest.mark.parametrize(("case", "spoil"), BAD_INVOICES, ids=[c for c, _ in BAD_INVOICES])
def test_an_invoice_of_no_version_is_a_bounded_invalid_event(case: str, spoil: Any) -> None:
    event = invoice_event(versions.NEWEST, "invoice.payment_failed", 200)
    spoil(event["data"]["object"])
    with pytest.raises(InvalidEvent) as raised:
        apply(None, event, CONFIG)
    assert raised.value.reason == "bad_type"


@pytest.mark.parametrize("subscription", [None, {"id": "sub_1", "object": "subscription"}])
def test_an_old_invoice_names_its_subscription_as_id_expanded_or_none(
    subscription: object,
) -> None:
    event = invoice_event("2024-06-20", "invoice.payment_failed", 200)
    event["data"]["object"]["subscription"] = subscription

    state, _ = fold([event], config=CONFIG)

    assert state.invoices["in_1"].subscription_id == (None if subscription is None else "sub_1")
