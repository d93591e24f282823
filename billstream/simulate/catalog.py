"""The simulated product catalog: the prices a simulated customer can buy, and their plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Interval = Literal["month", "year"]


@dataclass(frozen=True)
class Price:
    """One recurring Stripe price; `plan` is what BILLING_PLAN_MAP should map it to."""

    id: str
    lookup_key: str | None
    product: str
    plan: str
    interval: Interval
    unit_amount: int


PRO_MONTHLY = Price("price_1PROmonthly0000000001", "pro_monthly", "prod_PRO", "PRO", "month", 2900)
PRO_YEARLY = Price("price_1PROyearly00000000001", "pro_yearly", "prod_PRO", "PRO", "year", 29000)
BUSINESS_MONTHLY = Price(
    "price_1BUSmonthly0000000001", "business_monthly", "prod_BUSINESS", "BUSINESS", "month", 9900
)
BUSINESS_YEARLY = Price(
    "price_1BUSyearly00000000001", "business_yearly", "prod_BUSINESS", "BUSINESS", "year", 99000
)
# A grandfathered price nobody mapped: the pipeline must count it as unknown and grant FREE.
LEGACY = Price("price_1LEGACY2019000000001", None, "prod_LEGACY", "FREE", "month", 1900)

PRICES = (PRO_MONTHLY, PRO_YEARLY, BUSINESS_MONTHLY, BUSINESS_YEARLY)
TIERS = ("PRO", "BUSINESS")

# Entitlement features (lookup keys) each plan's product carries. BUSINESS has eleven: one more
# than a summary event lists, so its customers' features come from the Active Entitlements API.
PRO_FEATURES = ("api_access", "exports", "priority_support", "sso")
PLAN_FEATURES: dict[str, tuple[str, ...]] = {
    "PRO": PRO_FEATURES,
    "BUSINESS": (
        *PRO_FEATURES,
        "audit_log",
        "custom_roles",
        "data_retention_1y",
        "dedicated_support",
        "sandbox",
        "scim",
        "uptime_sla",
    ),
}


def features_for(plan: str) -> tuple[str, ...]:
    """The sorted lookup keys a live subscription to `plan` entitles to (none for others)."""
    return tuple(sorted(PLAN_FEATURES.get(plan, ())))


# What the pipeline's BILLING_PLAN_MAP must say for the simulator's prices: lookup keys, and the
# price ids too, because subscription schedule phases name their prices by id only.
SIMULATOR_PLAN_MAP = ",".join(
    [f"{price.lookup_key}={price.plan}" for price in PRICES]
    + [f"{price.id}={price.plan}" for price in PRICES]
)


def price_for(plan: str, interval: Interval) -> Price:
    """The catalog price of `plan` billed every `interval`."""
    for price in PRICES:
        if price.plan == plan and price.interval == interval:
            return price
    raise KeyError(f"no price for {plan}/{interval}")


def unmapped_prices(plan_map: dict[str, str]) -> list[str]:
    """Catalog lookup keys the given BILLING_PLAN_MAP does not map to their intended plan."""
    return [
        str(price.lookup_key)
        for price in PRICES
        if plan_map.get(str(price.lookup_key), plan_map.get(price.id)) != price.plan
    ]
