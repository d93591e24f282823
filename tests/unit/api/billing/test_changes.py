"""The classification of a plan change, and the api's plan rules held to the reducer's."""

from __future__ import annotations

from typing import Any

import pytest

from billstream.api.billing.catalog import Catalog, CatalogPrice
from billstream.api.billing.changes import Current, classify, current_of
from billstream.api.billing.errors import BillingError
from billstream.api.billing.plans import PlanBook
from billstream.processors.config import ReducerConfig
from billstream.processors.plans import resolve_pricing
from tests.support import factories as f
from tests.support.settings import SettingsFactory

BOOK = PlanBook(("FREE", "PRO", "BUSINESS"), "FREE", f.PLAN_MAP)


def sold(*entries: tuple[str, str]) -> Catalog:
    prices = [
        CatalogPrice(plan, interval, f"price_{plan}_{interval}", None, 100, "usd", "prod", None)
        for plan, interval in entries
    ]
    return Catalog(tuple(prices), 0)


CATALOG = sold(("PRO", "month"), ("PRO", "year"), ("BUSINESS", "month"))


def on(plan: str, interval: str, **fields: Any) -> Current:
    values: dict[str, Any] = {
        "subscription_id": "sub_1",
        "customer": "cus_1",
        "item_id": "si_1",
        "price_id": f"price_{plan}_{interval}",
        "plan": plan,
        "interval": interval,
        "pending_plan": None,
        "cancel_at_period_end": False,
        "period_end": 1_900_000_000,
    }
    values.update(fields)
    return Current(**values)


@pytest.mark.parametrize(
    ("current", "target", "kind", "price"),
    [
        (on("PRO", "month"), ("BUSINESS", "month"), "upgrade", "price_BUSINESS_month"),
        (on("PRO", "year"), ("BUSINESS", "month"), "upgrade", "price_BUSINESS_month"),
        (on("BUSINESS", "month"), ("PRO", "month"), "downgrade", "price_PRO_month"),
        (on("PRO", "month"), ("FREE", "month"), "downgrade", None),  # default, no price: cancel
        (on("PRO", "month"), ("PRO", "year"), "interval_switch", "price_PRO_year"),
        (on("PRO", "year"), ("PRO", "month"), "interval_switch", "price_PRO_month"),
        (on("PRO", "month"), ("PRO", "month"), "noop", "price_PRO_month"),
    ],
)
def test_kinds(current: Current, target: tuple[str, str], kind: str, price: str | None) -> None:
    change = classify(current, *target, CATALOG, BOOK)
    assert change.kind == kind
    assert change.price_id == price


@pytest.mark.parametrize(
    ("current", "target", "field"),
    [
        (on("PRO", "month"), ("BUSINESS", "year"), "interval"),  # no yearly BUSINESS price
        (on("BUSINESS", "month"), ("PRO", "year"), "interval"),  # downgrade + interval switch
        (on("FREE", "month"), ("FREE", "year"), "interval"),
    ],
)
def test_what_is_not_sold_is_a_422(current: Current, target: tuple[str, str], field: str) -> None:
    with pytest.raises(BillingError) as raised:
        classify(current, *target, CATALOG, BOOK)
    assert raised.value.status == 422
    assert raised.value.field == field


def test_the_plan_and_interval_are_the_reducers(make_settings: SettingsFactory) -> None:
    config = ReducerConfig.from_settings(
        make_settings(
            billing_plan_map="pro_monthly=PRO,"
            "business_monthly=BUSINESS,price_legacy_business=BUSINESS"
        )
    )
    legacy = f.price("price_legacy_business", lookup_key=None, interval="year")
    cases = [
        [f.pro_monthly()],
        [f.pro_monthly(), f.business_monthly()],  # the highest tier wins
        [f.unknown_price(), legacy],  # an add-on that maps to no plan is ignored
        [f.price("price_x", lookup_key="pro_monthly")],  # lookup_key wins over the id
    ]
    book = PlanBook(config.plan_order, config.default_plan, dict(config.plan_map))
    for prices in cases:
        sub = f.subscription(prices=prices, period="items", current_period_end=5)
        mine, reducers = current_of(sub, book), resolve_pricing(sub, config)
        assert (mine.plan, mine.interval) == (reducers.plan, reducers.interval)
        assert mine.period_end == reducers.item_period_end == 5


def test_a_subscription_without_live_status_or_mapped_item_cannot_change() -> None:
    for sub in (
        f.subscription(status="incomplete_expired"),
        f.subscription(prices=[f.unknown_price()]),
    ):
        with pytest.raises(BillingError) as raised:
            current_of(sub, BOOK)
        assert raised.value.status == 409
