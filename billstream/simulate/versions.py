"""The Stripe API versions billstream folds, and how each one shapes the objects it reads.

One place for the simulator, the tests and the docs (docs/state.md, "API versions"): a story is
rendered in a version's shape by `place_*` below, so `billstream simulate --api-version V` and
the property test that folds one story in every shape use the same code. Sources: Stripe's
changelog pages cited in docs/state.md, and stripe-python 16.1's types for 2026-10-28.endive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

# Every version whose shape is rendered and tested: the major releases from 2020-08-27 on,
# each named release's first version, and the monthly releases that changed a field we read.
SUPPORTED = (
    "2020-08-27",
    "2022-08-01",
    "2022-11-15",
    "2023-08-16",
    "2023-10-16",
    "2024-04-10",
    "2024-06-20",
    "2024-09-30.acacia",
    "2024-12-18.acacia",
    "2025-03-31.basil",
    "2025-06-30.basil",
    "2025-09-30.clover",
    "2026-03-25.dahlia",
    "2026-09-30.endive",
    "2026-10-28.endive",
)
NEWEST = SUPPORTED[-1]  # stripe-python 16.1's own version (billstream.stripe_client)

BASIL = "2025-03-31"  # periods move to items; invoices name their parent
BILLING_MODE = "2025-06-30"  # `billing_mode` on subscriptions (classic by default)
FLEXIBLE_DEFAULT = "2025-09-30"  # clover: new subscriptions default to flexible billing mode
# `customer_account` beside `customer` (Accounts v2): in stripe-python 16.1's endive types; the
# changelog does not say which version added the field to subscriptions and invoices.
ACCOUNTS_AS_CUSTOMERS = "2026-09-30"


@dataclass(frozen=True)
class Shape:
    """What one API version does with the fields billstream reads."""

    version: str

    @property
    def _date(self) -> str:
        return self.version[:10]

    @property
    def period_on_items(self) -> bool:
        """basil: `current_period_*` only on `items.data[]`, not on the subscription."""
        return self._date >= BASIL

    @property
    def invoice_parent(self) -> bool:
        """basil: `invoice.parent` replaces `subscription`, `quote` and the `paid` flag."""
        return self._date >= BASIL

    @property
    def billing_mode(self) -> str | None:
        if self._date < BILLING_MODE:
            return None
        return "flexible" if self._date >= FLEXIBLE_DEFAULT else "classic"

    @property
    def customer_account(self) -> bool:
        return self._date >= ACCOUNTS_AS_CUSTOMERS


def shape(version: str) -> Shape:
    """The shape of `version`; a version newer than any known gets the newest shape."""
    return Shape(version)


def place_period(version: str, subscription: Json, item: Json, start: int, end: int) -> None:
    """The billing period on the subscription (before basil) or on its item (basil on)."""
    period = {"current_period_start": start, "current_period_end": end}
    (item if shape(version).period_on_items else subscription).update(period)


def place_subscription_extras(version: str, subscription: Json, created: int) -> None:
    """Fields a version adds that billstream ignores, so tests prove they are ignored."""
    current = shape(version)
    if current.billing_mode is not None:
        subscription["billing_mode"] = {
            "type": current.billing_mode,
            "flexible": {"proration_discounts": "included"}
            if current.billing_mode == "flexible"
            else None,
            "updated_at": created if current.billing_mode == "flexible" else None,
        }
    if current.customer_account:
        subscription["customer_account"] = None


def place_invoice_parent(
    version: str,
    invoice: Json,
    *,
    subscription_id: str | None,
    quote_id: str | None = None,
    paid: bool = False,
) -> None:
    """Who the invoice is for: `subscription`/`quote` (before basil) or `parent` (basil on)."""
    current = shape(version)
    if not current.invoice_parent:
        invoice["subscription"] = subscription_id
        invoice["quote"] = quote_id
        invoice["paid"] = paid
    elif subscription_id is not None:
        invoice["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": subscription_id, "metadata": {}},
        }
    elif quote_id is not None:
        invoice["parent"] = {
            "type": "quote_details",
            "quote_details": {"quote": quote_id},
            "subscription_details": None,
        }
    else:
        invoice["parent"] = None
    if current.customer_account:
        invoice["customer_account"] = None
