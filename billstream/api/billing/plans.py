"""BILLING_PLAN_MAP / BILLING_PLAN_ORDER as the api reads them (the worker's rules, not its code).

The api may not import the processors (import-linter), so the few rules it shares with the
reducer — a price's plan is its `lookup_key`'s, else its id's; tiers rank by position — are
restated here on the same settings and held to the reducer's by tests/unit/api/billing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billstream.settings import Settings

INTERVALS = ("month", "year")


def is_price_id(key: str) -> bool:
    """Map keys that are price ids (`price_...`, legacy `plan_...`) rather than lookup keys."""
    return key.startswith(("price_", "plan_"))


@dataclass(frozen=True)
class PlanBook:
    order: tuple[str, ...]
    default_plan: str
    plan_map: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanBook:
        return cls(
            settings.billing_plan_order,
            settings.billing_default_plan,
            dict(settings.billing_plan_map),
        )

    def tier(self, plan: str) -> int:
        return self.order.index(plan) if plan in self.order else -1

    def plan_of_price(self, price: Mapping[str, Any]) -> str | None:
        """The plan a price grants: its lookup_key's, else its id's; None if unmapped."""
        for key in (price.get("lookup_key"), price.get("id")):
            if isinstance(key, str) and key in self.plan_map:
                return self.plan_map[key]
        return None

    def keys_for(self, plan: str) -> tuple[list[str], list[str]]:
        """(lookup keys, price ids) mapped to `plan`, in BILLING_PLAN_MAP order."""
        keys = [key for key, mapped in self.plan_map.items() if mapped == plan]
        return [k for k in keys if not is_price_id(k)], [k for k in keys if is_price_id(k)]
