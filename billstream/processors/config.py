"""The reducer's view of the settings: plan map, tiers, default plan, de-duplication horizon."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from billstream.settings import Settings


@dataclass(frozen=True)
class ReducerConfig:
    """Plain values, so tests build one without the environment."""

    plan_map: Mapping[str, str] = field(default_factory=dict)
    default_plan: str = "FREE"
    plan_order: tuple[str, ...] = ("FREE", "PRO", "BUSINESS")
    dedup_retention_seconds: int = 7 * 86400
    # Closed invoices are kept this long in event time (at least the de-duplication horizon),
    # so a replay within Stripe's 30-day event retention never reopens one (docs/state.md).
    closed_invoice_retention_seconds: int = 35 * 86400
    # STRIPE_API_KEY set: an ambiguous same-second tie asks the resolver for a refetch.
    refetch_ties: bool = False
    platform_account: str | None = None  # STRIPE_ACCOUNT_ID: its events are the platform's

    @classmethod
    def from_settings(cls, settings: Settings) -> ReducerConfig:
        return cls(
            plan_map=dict(settings.billing_plan_map),
            default_plan=settings.billing_default_plan,
            plan_order=tuple(settings.billing_plan_order),
            dedup_retention_seconds=settings.dedup_retention_seconds,
            closed_invoice_retention_seconds=settings.closed_invoice_retention_seconds,
            refetch_ties=settings.stripe_api_key is not None,
            platform_account=settings.stripe_account_id,
        )

    def tier(self, plan: str | None) -> int:
        """Position in BILLING_PLAN_ORDER; -1 for a plan outside it (never the highest)."""
        return self._tiers.get(plan, -1)

    @cached_property
    def _tiers(self) -> dict[str | None, int]:
        # The first position of each plan, as plan_order.index gives it.
        return {plan: self.plan_order.index(plan) for plan in self.plan_order}
