"""Price → plan resolution: lookup_key before price id, highest tier, unknown prices."""

from __future__ import annotations

from billstream.processors.plans import resolve_pricing
from tests.support.factories import (
    business_yearly,
    price,
    pro_monthly,
    subscription,
    unknown_price,
)
from tests.unit.processors.support import CONFIG


def test_lookup_key_wins_over_price_id() -> None:
    # The price id maps to BUSINESS, its lookup_key to PRO: the lookup_key decides.
    both = price("price_legacy_business", lookup_key="pro_monthly")
    pricing = resolve_pricing(subscription(prices=[both]), CONFIG)

    assert (pricing.plan, pricing.price, pricing.known) == ("PRO", "pro_monthly", True)


def test_price_id_used_when_the_lookup_key_is_absent_or_unmapped() -> None:
    for lookup_key in (None, "not_in_map"):
        legacy = price("price_legacy_business", lookup_key=lookup_key, interval="year")
        pricing = resolve_pricing(subscription(prices=[legacy]), CONFIG)

        assert (pricing.plan, pricing.interval, pricing.known) == ("BUSINESS", "year", True)


def test_highest_tier_item_grants_the_plan_and_add_ons_are_ignored() -> None:
    sub = subscription(
        prices=[pro_monthly(), unknown_price(), business_yearly()],
        period="items",
        current_period_end=7_000,
    )
    pricing = resolve_pricing(sub, CONFIG)

    assert (pricing.plan, pricing.price, pricing.interval) == (
        "BUSINESS",
        "business_yearly",
        "year",
    )
    assert pricing.item_period_end == 7_000
    assert pricing.known


def test_unknown_prices_give_the_default_plan() -> None:
    pricing = resolve_pricing(subscription(prices=[unknown_price()], period="items"), CONFIG)

    assert (pricing.plan, pricing.price, pricing.known) == ("FREE", "not_in_map", False)
    assert pricing.interval == "month"
    assert pricing.item_period_end is not None


def test_subscription_without_items_grants_the_default_plan() -> None:
    pricing = resolve_pricing(subscription(prices=[]), CONFIG)

    assert (pricing.plan, pricing.price, pricing.interval, pricing.known) == (
        "FREE",
        None,
        None,
        False,
    )


def test_item_period_end_falls_back_to_the_latest_item() -> None:
    sub = subscription(prices=[pro_monthly(), unknown_price()], period="items")
    sub["items"]["data"][0].pop("current_period_end")
    sub["items"]["data"][1]["current_period_end"] = 9_000

    assert resolve_pricing(sub, CONFIG).item_period_end == 9_000
