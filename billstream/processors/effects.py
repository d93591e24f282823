"""What applying an event caused: the worker publishes, counts and logs these, never re-derives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Effect:
    """Base of every effect."""


@dataclass(frozen=True)
class Duplicate(Effect):
    """The event id was already applied: nothing changed (the worker re-emits the view)."""

    event_id: str


@dataclass(frozen=True)
class Stale(Effect):
    """A subscription event older than the last one applied to that subscription: ignored."""

    subscription_id: str


@dataclass(frozen=True)
class AccountChanged(Effect):
    """The account view changed; `account` is the new contract JSON object (version bumped)."""

    account: dict[str, Any]


@dataclass(frozen=True)
class PlanChanged(Effect):
    """The account's plan moved (a new account counts as coming from the default plan)."""

    from_plan: str
    to_plan: str


@dataclass(frozen=True)
class UnknownPrice(Effect):
    """No price of the subscription is in BILLING_PLAN_MAP: it grants the default plan."""

    subscription_id: str
    price: str | None


@dataclass(frozen=True)
class DowngradeScheduled(Effect):
    """The granting subscription now carries a `pending_plan` of a lower tier than its plan."""

    subscription_id: str
    from_plan: str
    to_plan: str


@dataclass(frozen=True)
class SubscriptionEvent(Effect):
    """A `customer.subscription.*` event was received (label: its type)."""

    type: str


@dataclass(frozen=True)
class CheckoutCompleted(Effect):
    """A `checkout.session.completed` event was received."""


@dataclass(frozen=True)
class InvoicePaid(Effect):
    """An invoice became paid (counted once per invoice, on the first paid/succeeded event)."""

    invoice_id: str


@dataclass(frozen=True)
class InvoiceFailed(Effect):
    """An `invoice.payment_failed` event (one per failed attempt)."""

    invoice_id: str


@dataclass(frozen=True)
class InvoiceActionRequired(Effect):
    """An `invoice.payment_action_required` event (one per attempt needing 3-D Secure)."""

    invoice_id: str


@dataclass(frozen=True)
class DunningEntered(Effect):
    """A failed payment opened a dunning episode for this invoice."""

    invoice_id: str


@dataclass(frozen=True)
class DunningRecovered(Effect):
    """Paid after failing; `seconds` from the first failure's `created` to the payment's."""

    invoice_id: str
    seconds: int


@dataclass(frozen=True)
class DunningLost(Effect):
    """The dunning episode ended unpaid: voided, uncollectible, or subscription ended."""

    invoice_id: str


@dataclass(frozen=True)
class ScaEntered(Effect):
    """A payment needing 3-D Secure opened an SCA episode for this invoice."""

    invoice_id: str


@dataclass(frozen=True)
class ScaCompleted(Effect):
    """Paid after requiring action; `seconds` from the first request's `created`."""

    invoice_id: str
    seconds: int


@dataclass(frozen=True)
class ScaLost(Effect):
    """The SCA episode ended unpaid: voided, uncollectible, or subscription ended."""

    invoice_id: str


@dataclass(frozen=True)
class EntitlementsIncomplete(Effect):
    """A summary said `has_more`: the worker asks the resolver to fetch the whole list.

    `created` is the summary's: the request's id and the synthetic event's derive from it.
    """

    customer_id: str
    created: int


@dataclass(frozen=True)
class EpisodeChanged(Effect):
    """A dunning or SCA episode opened, changed or closed: its billing.invoice-episodes record
    (processors/episodes.py)."""

    episode: dict[str, Any]


@dataclass(frozen=True)
class InvoicePartiallyPaid(Effect):
    """A payment event for an invoice that still has an amount remaining: no episode closes."""

    invoice_id: str


@dataclass(frozen=True)
class InvoiceNotice(Effect):
    """An invoice event that is counted but changes no state (label: its type)."""

    type: str


@dataclass(frozen=True)
class ScheduleEvent(Effect):
    """A `subscription_schedule.*` event was received (label: its type)."""

    type: str


@dataclass(frozen=True)
class OrderingTie(Effect):
    """Two events of one subscription at the same `created`: how the tie was decided
    (processors/ordering.py; label of billstream_ordering_ties_total)."""

    resolution: str


@dataclass(frozen=True)
class SubscriptionRefetch(Effect):
    """A same-second tie no rule decides: the worker asks the resolver to fetch the
    subscription, folded back as an authoritative update at `created`."""

    customer_id: str
    subscription_id: str
    created: int
