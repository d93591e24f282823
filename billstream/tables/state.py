"""The per-customer aggregate: ONE value of ONE changelog-backed table, keyed by customer id.

Account, subscriptions, invoice episodes and the de-duplication ids live together so that one
table write persists an event's whole effect: a crash can never store "seen" without the state
change it caused (docs/state.md, "How state is computed").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AccountState:
    """The contract's account-state fields as last published (DESIGN.md, "Account state")."""

    plan: str
    interval: str | None = None
    subscription_id: str | None = None
    subscription_status: str | None = None
    payment_state: str = "ok"
    cancel_at_period_end: bool = False
    pending_plan: str | None = None
    current_period_end: int | None = None
    deleted: bool = False
    version: int = 0
    updated_by_event: str | None = None
    updated_by_event_type: str | None = None  # lets readers record transitions by event type
    updated_at: int | None = None


@dataclass(frozen=True)
class SubscriptionState:
    """One subscription as of its last applied event; kept after deletion as a tombstone."""

    id: str
    status: str
    plan: str
    last_event_created: int
    price: str | None = None
    interval: str | None = None
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    pending_plan: str | None = None
    deleted: bool = False
    # Latest `created` of any event (applied or stale) that showed the subscription ending:
    # lets a late invoice failure know it was already lost, whatever the delivery order.
    ended_at: int | None = None


@dataclass(frozen=True)
class InvoiceState:
    """The dunning/SCA episodes of one invoice; `outcome` set means closed for good."""

    id: str
    subscription_id: str | None = None
    dunning_since: int | None = None
    sca_since: int | None = None
    outcome: str | None = None  # "paid" or "lost"
    closed_at: int | None = None
    paid: bool = False

    @property
    def is_open(self) -> bool:
        return self.dunning_since is not None or self.sca_since is not None


@dataclass
class CustomerState:
    """Everything the reducer knows about one customer; `apply` returns a new one."""

    customer_id: str
    account: AccountState | None = None
    subscriptions: dict[str, SubscriptionState] = field(default_factory=dict)
    invoices: dict[str, InvoiceState] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # event id -> event created
    newest_created: int = 0
    deleted: bool = False  # customer.deleted seen: sticky, Stripe never undeletes

    def clone(self) -> CustomerState:
        """A copy safe to change: records are frozen, so copying the containers suffices."""
        return replace(
            self,
            subscriptions=dict(self.subscriptions),
            invoices=dict(self.invoices),
            seen=dict(self.seen),
        )

    def account_view(self) -> dict[str, Any] | None:
        """The account-state JSON object of the contract, or None before the first change."""
        if self.account is None:
            return None
        return {"customer_id": self.customer_id, **asdict(self.account)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and stable (sorted ids), for the table's value serializer."""
        return {
            "schema": SCHEMA_VERSION,
            "customer_id": self.customer_id,
            "account": None if self.account is None else asdict(self.account),
            "subscriptions": [asdict(s) for _, s in sorted(self.subscriptions.items())],
            "invoices": [asdict(i) for _, i in sorted(self.invoices.items())],
            "seen": dict(sorted(self.seen.items())),
            "newest_created": self.newest_created,
            "deleted": self.deleted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of `to_dict`."""
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"unsupported state schema {data.get('schema')!r}")
        account = data["account"]
        subscriptions = [SubscriptionState(**s) for s in data["subscriptions"]]
        invoices = [InvoiceState(**i) for i in data["invoices"]]
        return cls(
            customer_id=data["customer_id"],
            account=None if account is None else AccountState(**account),
            subscriptions={s.id: s for s in subscriptions},
            invoices={i.id: i for i in invoices},
            seen={str(k): int(v) for k, v in data["seen"].items()},
            newest_created=int(data["newest_created"]),
            deleted=bool(data["deleted"]),
        )
