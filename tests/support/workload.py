"""A seeded stream of realistic Stripe Billing events over many customers, as Kafka records.

Each customer lives a plausible life (checkout, subscription, invoices paid, upgrades, failed
payments recovered or lost, 3-D Secure, scheduled downgrades, deletion); customers interleave
by event time, Stripe-style retries re-deliver some events with the same id, and a few poison
records (not JSON, missing fields) are mixed in. Keys and headers are exactly what ingest
publishes (billstream.routing), so the worker cannot tell the difference.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from billstream.routing import record_headers, routing_key
from tests.support import factories as f

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

START = 1_767_225_600  # 2026-01-01, event time of the first event
DAY = 86_400


@dataclass
class Workload:
    """Records in publish order, and the well-formed events (with retries) per customer."""

    records: list[Record] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    poison: int = 0
    duplicates: int = 0


def customer_life(rng: random.Random, customer: str, start: int) -> Iterator[dict[str, Any]]:
    """The events of one customer, in event-time order."""
    t = start
    sub = f"sub_{customer[4:]}"

    def later(seconds: int) -> int:
        nonlocal t
        t += rng.randint(1, seconds)
        return t

    period = rng.choice(["top", "items"])
    shape = rng.choice(["old", "basil"])
    plan = rng.choice([f.pro_monthly, f.pro_yearly, f.business_monthly])
    common = {"customer": customer, "sub_id": sub, "period": period}
    yield f.checkout_completed(created=later(60), customer=customer, sub_id=sub)
    status = rng.choice(["trialing", "active", "active"])
    yield f.subscription_event(
        "customer.subscription.created", created=later(60), status=status, prices=[plan()], **common
    )
    yield f.customer_event("customer.updated", created=later(600), customer=customer)

    def invoice(kind: str, invoice_id: str) -> dict[str, Any]:
        return f.invoice_event(
            kind, created=later(3600), invoice_id=invoice_id, customer=customer,
            subscription_id=sub, shape=shape,
        )  # fmt: skip

    for number in range(1, rng.randint(1, 4) + 1):
        invoice_id = f"in_{customer[4:]}_{number}"
        yield invoice("invoice.created", invoice_id)
        yield invoice("invoice.finalized", invoice_id)
        roll = rng.random()
        if roll < 0.15:
            for _ in range(rng.randint(1, 3)):
                yield invoice("invoice.payment_failed", invoice_id)
            if rng.random() < 0.3:
                yield f.subscription_event(
                    "customer.subscription.deleted", created=later(DAY), prices=[plan()], **common
                )
                return
            yield invoice("invoice.paid", invoice_id)
        elif roll < 0.25:
            yield invoice("invoice.payment_action_required", invoice_id)
            yield invoice(rng.choice(["invoice.paid", "invoice.payment_succeeded"]), invoice_id)
        else:
            yield invoice("invoice.paid", invoice_id)
        if rng.random() < 0.2:
            plan = f.business_yearly if rng.random() < 0.5 else f.business_monthly
            yield f.subscription_event(created=later(DAY), prices=[plan()], **common)
    if rng.random() < 0.15:
        yield f.subscription_event(
            created=later(DAY), prices=[plan()], pending_plan="PRO", cancel_at_period_end=True,
            **common,
        )  # fmt: skip
    if rng.random() < 0.05:
        yield f.customer_event("customer.deleted", created=later(DAY), customer=customer)


def build_workload(
    customers: int,
    *,
    seed: int = 7,
    prefix: str = "cus_w",
    duplicate_rate: float = 0.03,
    poison_rate: float = 0.002,
    received_at_ms: int | None = None,
) -> Workload:
    """`customers` interleaved lives; ~9 events each plus retries and poison records."""
    rng = random.Random(seed)
    timeline: list[tuple[int, int, dict[str, Any]]] = []
    for n in range(customers):
        customer = f"{prefix}{n:06d}"
        start = START + rng.randint(0, 30 * DAY)
        for event in customer_life(rng, customer, start):
            timeline.append((event["created"], len(timeline), event))
            if rng.random() < duplicate_rate:  # Stripe retries: same id, later
                timeline.append((event["created"] + rng.randint(1, DAY), len(timeline), event))
    timeline.sort(key=lambda item: (item[0], item[1]))
    workload = Workload()
    seen: set[str] = set()
    received = received_at_ms if received_at_ms is not None else START * 1000
    for _, _, event in timeline:
        key = routing_key(event)
        if event["id"] in seen:
            workload.duplicates += 1
        seen.add(event["id"])
        workload.events.setdefault(key, []).append(event)
        workload.records.append(
            (key.encode(), orjson.dumps(event), record_headers(event, received))
        )
        if rng.random() < poison_rate:
            workload.poison += 1
            workload.records.append(_poison(rng, key, received, workload.poison))
    return workload


def _poison(rng: random.Random, key: str, received: int, number: int) -> Record:
    """A record ingest would never publish, but a bug or a manual replay could (unique body)."""
    event_id = f"evt_broken_{number}"
    body = rng.choice(
        [
            f"{{not json {event_id}".encode(),  # -> not_json
            f'{{"id": "{event_id}", "type": "invoice.paid"}}'.encode(),  # -> missing_field
            f'["{event_id}"]'.encode(),  # -> not_object
        ]
    )
    return (
        key.encode(),
        body,
        [("stripe-event-id", event_id.encode()), ("received-at", str(received).encode())],
    )
