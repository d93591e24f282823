"""The per-customer aggregate: ONE value of ONE changelog-backed table, keyed by customer id.

Account, subscriptions, invoice episodes and the de-duplication ids live together so that one
table write persists an event's whole effect: a crash can never store "seen" without the state
change it caused (docs/state.md, "How state is computed").
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, TypeVar

# 2: subscriptions remember their same-second tie facts (`applied_ids`, `prior`, `first`,
# `refetched`, processors/ordering.py). Schema 1 values decode with their defaults.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = frozenset({1, SCHEMA_VERSION})

_Record = TypeVar("_Record")


def evolve(record: _Record, **changes: Any) -> _Record:
    """`dataclasses.replace` for a record, without its per-call field introspection (~2x)."""
    return type(record)(**{**vars(record), **changes})


def fast_init(cls: type[_Record]) -> type[_Record]:
    """Give a frozen dataclass an `__init__` that fills the instance dict in one step.

    The `__init__` dataclasses generates for a frozen class calls `object.__setattr__` once per
    field (its own `__setattr__` raises), and that is most of the cost of building a record on
    the reducer's hot path: ~3x this one's for AccountState's 13 fields. Same parameters and
    defaults, same instance (fields in declaration order), still frozen afterwards. Plain fields
    only: no default_factory, init=False, kw_only, nor __post_init__.
    """
    params, items, defaults = [], [], {}
    for f in fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only or f.default_factory is not MISSING:
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is not a plain field")
        if f.default is MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        items.append(f"{f.name!r}: {f.name}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"fast_init: {cls.__name__} has a __post_init__")
    source = (
        f"def __init__(self, {', '.join(params)}):\n"
        f"    self.__dict__.update({{{', '.join(items)}}})\n"
    )
    namespace: dict[str, Any] = dict(defaults)
    exec(source, namespace)  # noqa: S102 (generated from the field names, as dataclasses does)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@fast_init
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
    # Sorted entitlement lookup keys; last so that values stored before it decode unchanged.
    features: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True)
class EntitlementsState:
    """The customer's active entitlements as of the summary event of `created`.

    `complete` is False while only the first page of a summary (Stripe lists ten) is known: a
    complete list of the same `created` (fetched from the Active Entitlements API) supersedes it.
    """

    features: tuple[str, ...]
    created: int
    complete: bool = True


@fast_init
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
    # Same-second tie facts (processors/ordering.py; schema 2): the sorted ids of the events
    # seen at `last_event_created` (a replay beyond the de-duplication horizon is known), the
    # tracked `previous_attributes` of the applied update as (field, value) pairs, whether it
    # was the `created` event, and whether it was a refetch (authoritative at its second).
    # Bookkeeping, not what the subscription is: left out of record equality.
    applied_ids: tuple[str, ...] = field(default=(), compare=False)
    prior: tuple[tuple[str, str | bool | None], ...] = field(default=(), compare=False)
    first: bool = field(default=False, compare=False)
    refetched: bool = field(default=False, compare=False)


@fast_init
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
    # The episodes as billing.invoice-episodes shows them (processors/episodes.py): when each
    # opened (kept after it closed), failed attempts, the latest attempt's decline code and its
    # event time, the account's plan when the first episode opened, and the records' version.
    dunning_opened: int | None = None
    sca_opened: int | None = None
    attempts: int = 0
    decline_code: str | None = None
    decline_at: int | None = None
    plan: str | None = None
    episode_version: int = 0

    @property
    def is_open(self) -> bool:
        return self.dunning_since is not None or self.sca_since is not None


@fast_init
@dataclass(frozen=True)
class ScheduleState:
    """One subscription schedule as of its last applied event; kept once ended (a tombstone).

    `next_plan` / `next_phase_start`: the plan the phase after the current one grants, and when
    Stripe applies it (docs/state.md, "Subscription schedules").
    """

    id: str
    status: str
    last_event_created: int
    subscription_id: str | None = None
    next_plan: str | None = None
    next_phase_start: int | None = None


@dataclass(slots=True)
class CustomerState:
    """Everything the reducer knows about one customer; `apply` returns a new one."""

    customer_id: str
    account: AccountState | None = None
    subscriptions: dict[str, SubscriptionState] = field(default_factory=dict)
    invoices: dict[str, InvoiceState] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # event id -> event created
    newest_created: int = 0
    deleted: bool = False  # customer.deleted seen: sticky, Stripe never undeletes
    entitlements: EntitlementsState | None = None
    # Added after schema 1 shipped: values written before it have none (read as empty).
    schedules: dict[str, ScheduleState] = field(default_factory=dict)
    # Invoices closed past the de-duplication horizon, as compact tombstones: invoice id ->
    # (closed_at, outcome), kept CLOSED_INVOICE_RETENTION_SECONDS so that no replay within
    # Stripe's 30-day event retention reopens one (schema 2; none in older values).
    closed_invoices: dict[str, tuple[int, str]] = field(default_factory=dict)
    # The connected account (Connect) the customer belongs to; None: the platform's own. Kept
    # out of the stored value and the view when None, so platform values are as before Connect.
    stripe_account: str | None = None

    def clone(self) -> CustomerState:
        """A copy safe to change: records are frozen, so copying the containers suffices."""
        return CustomerState(
            self.customer_id,
            self.account,
            self.subscriptions.copy(),
            self.invoices.copy(),
            self.seen.copy(),
            self.newest_created,
            self.deleted,
            self.entitlements,
            self.schedules.copy(),
            self.closed_invoices.copy() if self.closed_invoices else {},
            self.stripe_account,
        )

    def account_view(self) -> dict[str, Any] | None:
        """The account-state JSON object of the contract, or None before the first change."""
        if self.account is None:
            return None
        # A frozen record's __dict__ is its fields in declaration order (all set by __init__):
        # the same object as asdict's, which deep-copies and costs ~20x more.
        view = {"customer_id": self.customer_id, **vars(self.account)}
        view["features"] = list(self.account.features)  # as JSON has it: equal to a decoded view
        if self.stripe_account is not None:
            view["stripe_account"] = self.stripe_account
        return view

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and stable (sorted ids), for the table's value serializer."""
        data = {
            "schema": SCHEMA_VERSION,
            "customer_id": self.customer_id,
            "account": None if self.account is None else _plain(self.account),
            "subscriptions": [
                _plain_subscription(s) for _, s in sorted(self.subscriptions.items())
            ],
            "invoices": [asdict(i) for _, i in sorted(self.invoices.items())],
            "seen": dict(sorted(self.seen.items())),
            "newest_created": self.newest_created,
            "deleted": self.deleted,
            "entitlements": None if self.entitlements is None else _plain(self.entitlements),
            "schedules": [asdict(s) for _, s in sorted(self.schedules.items())],
            "closed_invoices": {i: list(t) for i, t in sorted(self.closed_invoices.items())},
        }
        if self.stripe_account is not None:
            data["stripe_account"] = self.stripe_account
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of `to_dict`."""
        if data.get("schema") not in READABLE_SCHEMAS:
            raise ValueError(f"unsupported state schema {data.get('schema')!r}")
        account = data["account"]
        entitlements = data.get("entitlements")  # absent in values stored before entitlements
        subscriptions = [_subscription(s) for s in data["subscriptions"]]
        invoices = [InvoiceState(**i) for i in data["invoices"]]
        schedules = [ScheduleState(**s) for s in data.get("schedules", ())]
        return cls(
            customer_id=data["customer_id"],
            account=None if account is None else _account(account),
            subscriptions={s.id: s for s in subscriptions},
            invoices={i.id: i for i in invoices},
            seen={str(k): int(v) for k, v in data["seen"].items()},
            newest_created=int(data["newest_created"]),
            deleted=bool(data["deleted"]),
            entitlements=None
            if entitlements is None
            else EntitlementsState(
                tuple(entitlements["features"]),
                int(entitlements["created"]),
                bool(entitlements["complete"]),
            ),
            schedules={s.id: s for s in schedules},
            closed_invoices={
                str(i): (int(t[0]), str(t[1])) for i, t in data.get("closed_invoices", {}).items()
            },
            stripe_account=data.get("stripe_account"),  # absent: the platform (pre-Connect too)
        )


def _plain(record: Any) -> dict[str, Any]:
    """`asdict` with JSON's lists for the records' tuples."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(record).items()}


def _plain_subscription(record: SubscriptionState) -> dict[str, Any]:
    """`asdict` with JSON's lists for the tie facts' tuples."""
    data = asdict(record)
    data["applied_ids"] = list(record.applied_ids)
    data["prior"] = [list(pair) for pair in record.prior]
    return data


def _subscription(data: dict[str, Any]) -> SubscriptionState:
    """JSON lists back to the record's tuples (schema 1 values have none of these fields)."""
    ids, prior = data.get("applied_ids"), data.get("prior")
    if not ids and not prior:
        return SubscriptionState(**{**data, "applied_ids": (), "prior": ()})
    return SubscriptionState(
        **{
            **data,
            "applied_ids": tuple(ids or ()),
            "prior": tuple((str(k), v) for k, v in prior or ()),
        }
    )


def _account(data: dict[str, Any]) -> AccountState:
    """JSON has lists, the record tuples: equal views must compare equal after a decode."""
    features = data.get("features")
    if features is None:
        return AccountState(**data)
    return AccountState(**{**data, "features": tuple(features)})
