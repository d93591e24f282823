"""One simulated customer: its Stripe objects and the events Stripe emits as they change.

Operations append events in the order Stripe creates them, with `created` on a virtual clock
(seconds apart within one API call, days apart between billing periods). Every event may carry a
tag (e.g. `dunning_recovered_2`) that the summary counts when that event was accepted.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field, replace
from typing import Any

from billstream.simulate import events, schedules, versions
from billstream.simulate.catalog import Price, features_for

DAY = 86400
PERIOD_DAYS = {"month": 30, "year": 365}
# Statuses whose subscription keeps its entitlements (processors/statuses.py: live).
ENTITLED_STATUSES = frozenset({"trialing", "active", "past_due"})
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Planned:
    """An event of one customer's story; `tag` names what it means for the summary."""

    customer_id: str
    event: events.Json
    tag: str | None = None


@dataclass
class Sub:
    id: str
    item_id: str
    price: Price
    status: str
    created: int
    period_start: int
    period_end: int
    trial_start: int | None = None
    trial_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    pending_plan: str | None = None
    latest_invoice: str | None = None


@dataclass
class Invoice:
    id: str
    price: Price
    billing_reason: str
    amount: int
    period_start: int
    period_end: int
    created: int
    status: str = "draft"
    attempt_count: int = 0
    next_attempt: int | None = None


@dataclass
class Story:
    rng: random.Random
    now: int
    api_version: str = events.NEWEST_API
    customer_id: str = ""
    planned: list[Planned] = field(default_factory=list)
    sub: Sub | None = None
    customer_created: int = 0
    features: tuple[str, ...] = ()  # the active entitlements Stripe last announced
    schedule: schedules.Schedule | None = None  # the subscription's active schedule

    def __post_init__(self) -> None:
        self.customer_id = self.customer_id or self.new_id("cus")
        self.customer_created = self.customer_created or self.now

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_1" + "".join(self.rng.choices(_ALPHABET, k=23))

    def wait(self, seconds: int) -> None:
        self.now += max(1, seconds)

    def wait_until(self, when: int) -> None:
        self.now = max(self.now + 1, when)

    def emit(
        self,
        event_type: str,
        obj: events.Json,
        *,
        previous: events.Json | None = None,
        tag: str | None = None,
    ) -> None:
        payload = events.event(
            self.new_id("evt"),
            event_type,
            obj,
            self.now,
            api_version=self.api_version,
            previous_attributes=previous,
            request_id=self.new_id("req"),
        )
        self.planned.append(Planned(self.customer_id, payload, tag))
        self.now += self.rng.randint(1, 3)

    # --- customer -------------------------------------------------------------------------
    def customer_object(self) -> events.Json:
        number = self.customer_id[-6:].lower()
        return events.customer(
            self.customer_id,
            self.customer_created,
            email=f"user-{number}@example.com",
            name=f"Customer {number}",
        )

    def customer_event(self, event_type: str, tag: str | None = None) -> None:
        self.emit(event_type, self.customer_object(), tag=tag)

    # --- subscription ---------------------------------------------------------------------
    def sub_object(self, sub: Sub) -> events.Json:
        obj = events.subscription(
            sub.id,
            customer_id=self.customer_id,
            item_id=sub.item_id,
            price=sub.price,
            status=sub.status,
            created=sub.created,
            current_period_start=sub.period_start,
            current_period_end=sub.period_end,
            api_version=self.api_version,
            cancel_at_period_end=sub.cancel_at_period_end,
            canceled_at=sub.canceled_at,
            ended_at=sub.ended_at,
            trial_start=sub.trial_start,
            trial_end=sub.trial_end,
            pending_plan=sub.pending_plan,
            latest_invoice=sub.latest_invoice,
        )
        obj["schedule"] = None if self.schedule is None else self.schedule.id
        return obj

    def open_subscription(
        self, price: Price, status: str, trial_days: int = 0, *, tag: str | None = None
    ) -> Sub:
        days = trial_days or PERIOD_DAYS[price.interval]
        sub = Sub(
            self.new_id("sub"),
            self.new_id("si"),
            price,
            status,
            self.now,
            self.now,
            self.now + days * DAY,
            trial_start=self.now if trial_days else None,
            trial_end=self.now + days * DAY if trial_days else None,
        )
        self.sub = sub
        self.emit("customer.subscription.created", self.sub_object(sub), tag=tag)
        self.sync_entitlements()
        return sub

    def update_sub(self, tag: str | None = None, event_type: str = "", **changes: Any) -> None:
        """Change the subscription and emit the event with Stripe's `previous_attributes`."""
        assert self.sub is not None
        before = self.sub_object(self.sub)
        self.sub = replace(self.sub, **changes)
        after = self.sub_object(self.sub)
        previous = {key: before[key] for key in after if before.get(key) != after[key]}
        self.emit(event_type or "customer.subscription.updated", after, previous=previous, tag=tag)
        self.sync_entitlements()

    def delete_sub(self, tag: str | None = None) -> None:
        assert self.sub is not None
        self.sub = replace(self.sub, status="canceled", canceled_at=self.now, ended_at=self.now)
        if self.schedule is not None:
            schedules.cancel(self)
        self.emit("customer.subscription.deleted", self.sub_object(self.sub), tag=tag)
        self.sync_entitlements()

    # --- entitlements ---------------------------------------------------------------------
    def sync_entitlements(self) -> None:
        """Stripe's `entitlements.active_entitlement_summary.updated` when the features the
        subscription grants changed: the first ten, `has_more` beyond (BUSINESS has eleven)."""
        sub = self.sub
        wanted = features_for(sub.price.plan) if sub and sub.status in ENTITLED_STATUSES else ()
        if wanted == self.features:
            return
        self.features = wanted
        summary = events.active_entitlement_summary(self.customer_id, list(wanted))
        more = summary["entitlements"]["has_more"]
        tag = "entitlements_has_more" if more else "entitlements_updated"
        self.emit("entitlements.active_entitlement_summary.updated", summary, tag=tag)

    def next_period(self) -> tuple[int, int]:
        assert self.sub is not None
        start = self.sub.period_end
        return start, start + PERIOD_DAYS[self.sub.price.interval] * DAY

    # --- invoices -------------------------------------------------------------------------
    def invoice_object(self, inv: Invoice) -> events.Json:
        assert self.sub is not None
        return events.invoice(
            inv.id,
            customer_id=self.customer_id,
            subscription_id=self.sub.id,
            price=inv.price,
            status=inv.status,
            billing_reason=inv.billing_reason,
            created=inv.created,
            period_start=inv.period_start,
            period_end=inv.period_end,
            amount_due=inv.amount,
            attempt_count=inv.attempt_count,
            next_payment_attempt=inv.next_attempt,
            api_version=self.api_version,
        )

    def upcoming_invoice(self) -> None:
        """`invoice.upcoming` previews the next invoice, which has no id yet."""
        assert self.sub is not None
        start, end = self.next_period()
        amount = self.sub.price.unit_amount
        preview = Invoice("", self.sub.price, "upcoming", amount, start, end, self.now)
        obj = self.invoice_object(preview)
        obj.pop("id", None)
        self.emit("invoice.upcoming", obj)

    def open_invoice(self, reason: str, amount: int, start: int, end: int) -> Invoice:
        assert self.sub is not None
        inv = Invoice(self.new_id("in"), self.sub.price, reason, amount, start, end, self.now)
        self.sub.latest_invoice = inv.id
        self.emit("invoice.created", self.invoice_object(inv))
        inv.status = "open"
        self.emit("invoice.finalized", self.invoice_object(inv))
        return inv

    def pay(self, inv: Invoice, tag: str | None = None) -> None:
        if inv.amount:
            intent = events.payment_intent(
                self.new_id("pi"),
                customer_id=self.customer_id,
                amount=inv.amount,
                status="succeeded",
            )
            self.emit("payment_intent.succeeded", intent)
            self.emit("charge.succeeded", {**intent, "id": self.new_id("ch"), "object": "charge"})
            inv.attempt_count += 1
        inv.status, inv.next_attempt = "paid", None
        self.emit("invoice.paid", self.invoice_object(inv), tag=tag)
        self.emit("invoice.payment_succeeded", self.invoice_object(inv))

    def fail(self, inv: Invoice, retry_in_days: int | None, tag: str | None = None) -> None:
        inv.attempt_count += 1
        inv.next_attempt = self.now + retry_in_days * DAY if retry_in_days else None
        intent = events.payment_intent(
            self.new_id("pi"),
            customer_id=self.customer_id,
            amount=inv.amount,
            status="requires_payment_method",
        )
        decline = events.decline_code(intent["id"])
        # Before basil a failed PaymentIntent and Charge name their invoice (docs/state.md).
        link = {} if versions.shape(self.api_version).invoice_parent else {"invoice": inv.id}
        error = {"type": "card_error", "code": "card_declined", "decline_code": decline}
        self.emit("payment_intent.payment_failed", {**intent, **link, "last_payment_error": error})
        charge = {
            **intent,
            **link,
            "id": self.new_id("ch"),
            "object": "charge",
            "failure_code": "card_declined",
            "outcome": {"type": "issuer_declined", "reason": decline},
        }
        self.emit("charge.failed", charge)
        self.emit("invoice.payment_failed", self.invoice_object(inv), tag=tag)

    def action_required(self, inv: Invoice, tag: str | None = None) -> None:
        inv.attempt_count += 1
        intent = events.payment_intent(
            self.new_id("pi"),
            customer_id=self.customer_id,
            amount=inv.amount,
            status="requires_action",
        )
        self.emit("payment_intent.requires_action", intent)
        self.emit("invoice.payment_action_required", self.invoice_object(inv), tag=tag)

    def close_invoice(self, inv: Invoice, status: str, tag: str | None = None) -> None:
        """`void` or `uncollectible`: the invoice will never be paid."""
        inv.status, inv.next_attempt = status, None
        event_type = "invoice.voided" if status == "void" else "invoice.marked_uncollectible"
        self.emit(event_type, self.invoice_object(inv), tag=tag)
