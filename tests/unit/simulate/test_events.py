"""Payload shapes follow Stripe's, in both API generations the contract accepts."""

from __future__ import annotations

from typing import TypedDict

from billstream.simulate import catalog, events, versions
from billstream.simulate.catalog import Price


class SubscriptionFields(TypedDict):
    customer_id: str
    item_id: str
    price: Price
    status: str
    created: int
    current_period_start: int
    current_period_end: int


class InvoiceFields(TypedDict):
    customer_id: str
    subscription_id: str | None
    price: Price
    status: str
    billing_reason: str
    created: int
    period_start: int
    period_end: int
    amount_due: int


SUB: SubscriptionFields = {
    "customer_id": "cus_1",
    "item_id": "si_1",
    "price": catalog.PRO_MONTHLY,
    "status": "active",
    "created": 100,
    "current_period_start": 100,
    "current_period_end": 200,
}
INVOICE: InvoiceFields = {
    "customer_id": "cus_1",
    "subscription_id": "sub_1",
    "price": catalog.PRO_MONTHLY,
    "status": "open",
    "billing_reason": "subscription_cycle",
    "created": 100,
    "period_start": 100,
    "period_end": 200,
    "amount_due": 2900,
}


def test_basil_subscription_period_is_on_the_items() -> None:
    obj = events.subscription("sub_1", api_version=events.BASIL_API, pending_plan="PRO", **SUB)
    [item] = obj["items"]["data"]
    assert "current_period_end" not in obj
    assert item["current_period_end"] == 200
    assert item["price"]["lookup_key"] == "pro_monthly"
    assert item["price"]["recurring"]["interval"] == "month"
    assert obj["metadata"] == {"pending_plan": "PRO"}


def test_legacy_subscription_period_is_on_the_subscription() -> None:
    obj = events.subscription("sub_1", api_version=events.LEGACY_API, **SUB)
    assert obj["current_period_end"] == 200
    assert "current_period_end" not in obj["items"]["data"][0]
    assert obj["metadata"] == {}


def test_invoice_names_its_subscription_per_api_version() -> None:
    basil = events.invoice("in_1", api_version=events.BASIL_API, **INVOICE)
    legacy = events.invoice("in_1", api_version=events.LEGACY_API, **INVOICE)
    assert basil["parent"]["subscription_details"]["subscription"] == "sub_1"
    assert "subscription" not in basil
    assert legacy["subscription"] == "sub_1"
    assert "parent" not in legacy


def test_upcoming_invoice_has_no_id() -> None:
    assert "id" not in events.invoice(None, **INVOICE)


def test_event_envelope() -> None:
    obj = events.customer("cus_1", 5, email="a@example.com", name="A")
    evt = events.event("evt_1", "customer.updated", obj, 7, previous_attributes={"name": "B"})
    assert evt["id"] == "evt_1"
    assert evt["type"] == "customer.updated"
    assert evt["created"] == 7
    assert evt["data"] == {"object": obj, "previous_attributes": {"name": "B"}}


def test_simulator_plan_map_covers_the_catalog() -> None:
    plan_map = dict(item.split("=") for item in catalog.SIMULATOR_PLAN_MAP.split(","))
    assert catalog.unmapped_prices(plan_map) == []
    assert catalog.unmapped_prices({}) == [p.lookup_key for p in catalog.PRICES]
    assert catalog.LEGACY.lookup_key is None
    assert catalog.LEGACY.id not in plan_map


def test_a_quote_invoice_names_its_quote_per_api_version() -> None:
    fields: InvoiceFields = {**INVOICE, "subscription_id": None}
    new = events.invoice("in_1", api_version=versions.NEWEST, quote_id="qt_1", **fields)
    old = events.invoice("in_1", api_version=events.LEGACY_API, quote_id="qt_1", **fields)
    assert new["parent"] == {
        "type": "quote_details",
        "quote_details": {"quote": "qt_1"},
        "subscription_details": None,
    }
    assert (old["subscription"], old["quote"]) == (None, "qt_1")


def test_newer_versions_add_fields_billstream_ignores() -> None:
    oldest = events.subscription("sub_1", api_version=versions.SUPPORTED[0], **SUB)
    newest = events.subscription("sub_1", api_version=versions.NEWEST, **SUB)
    assert "billing_mode" not in oldest
    assert "customer_account" not in oldest
    assert newest["billing_mode"]["type"] == "flexible"
    assert newest["customer_account"] is None
    [item] = newest["items"]["data"]
    assert item["plan"]["id"] == item["price"]["id"]
    assert item["plan"]["interval"] == item["price"]["recurring"]["interval"]
