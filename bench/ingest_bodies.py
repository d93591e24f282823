"""Realistic 3-8 KB Stripe event bodies, pretty-printed like Stripe's, and signed raw requests."""

from __future__ import annotations

import json
import random
from typing import Any

from billstream.stripe_signing import sign_payload

TYPES = (
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.finalized",
    "customer.subscription.updated",
    "customer.subscription.created",
    "checkout.session.completed",
    "customer.updated",
)
MIN_SIZE, MAX_SIZE = 3_000, 8_000


def _line(rng: random.Random, n: int, customer: str) -> dict[str, Any]:
    price = f"price_{rng.getrandbits(48):012x}"
    return {
        "id": f"il_{rng.getrandbits(64):016x}",
        "object": "line_item",
        "amount": rng.choice([900, 2900, 9900, 49900]),
        "currency": "usd",
        "description": f"1 x Pro plan seat #{n} (at $29.00 / month)",
        "discountable": True,
        "livemode": False,
        "metadata": {"customer": customer, "seat": str(n)},
        "period": {"end": 1_769_904_000, "start": 1_767_225_600},
        "pricing": {"price_details": {"price": price, "product": f"prod_{price[6:]}"}},
        "quantity": 1,
        "parent": {"type": "subscription_item_details"},
    }


def event_body(rng: random.Random, index: int) -> bytes:
    """One event of a random type, grown with line items to a random size in 3-8 KB."""
    event_type = rng.choice(TYPES)
    customer = f"cus_{rng.randrange(50_000):08d}"
    kind = event_type.split(".")[-2] if event_type.count(".") > 1 else event_type.split(".")[0]
    obj: dict[str, Any] = {
        "id": f"{kind[:3]}_{rng.getrandbits(64):016x}",
        "object": kind,
        "customer": customer,
        "created": 1_767_225_600,
        "currency": "usd",
        "livemode": False,
        "metadata": {"workspace": f"ws_{index}", "pending_plan": rng.choice(["", "FREE"])},
        "status": rng.choice(["paid", "open", "active", "past_due"]),
        "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices/x/lines"},
    }
    event = {
        "id": f"evt_{rng.getrandbits(96):024x}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": 1_767_225_600 + index,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{rng.getrandbits(48):012x}", "idempotency_key": None},
        "type": event_type,
    }
    target = rng.randint(MIN_SIZE, MAX_SIZE - 900)
    body = json.dumps(event, indent=2).encode()
    while len(body) < target:
        obj["lines"]["data"].append(_line(rng, len(obj["lines"]["data"]), customer))
        body = json.dumps(event, indent=2).encode()
    return body


def bodies(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [event_body(rng, index) for index in range(count)]


def raw_request(body: bytes, secret: str, timestamp: int, host: str) -> bytes:
    """A complete HTTP/1.1 POST, as Stripe sends it (signed with `timestamp`)."""
    head = (
        "POST /webhooks/stripe HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Stripe-Signature: {sign_payload(body, secret, timestamp)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
