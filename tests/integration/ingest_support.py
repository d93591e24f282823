"""Helpers for ingest integration tests: the real app (real Kafka publisher) and signed posts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from billstream.ingest.app import WEBHOOK_PATH
from billstream.stripe_signing import sign_payload

SECRET = "whsec_test_secret"  # what make_settings configures


def stripe_event(event_id: str, customer: str, **extra: Any) -> bytes:
    """A Stripe-shaped invoice event, pretty-printed as Stripe sends it."""
    event = {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": 1_767_225_600,
        "data": {"object": {"id": f"in_{event_id}", "object": "invoice", "customer": customer}},
        **extra,
    }
    return json.dumps(event, indent=2).encode()


async def post_signed(
    client: TestClient[Any, Any],
    body: bytes,
    signature: str | None = None,
    path: str = WEBHOOK_PATH,
    secret: str = SECRET,
) -> tuple[int, str]:
    """POST like Stripe; returns (HTTP status, body `status`)."""
    headers = {"Stripe-Signature": signature or sign_payload(body, secret)}
    response = await client.post(path, data=body, headers=headers)
    return response.status, (await response.json())["status"]


async def wait_ready(client: TestClient[Any, Any], timeout: float = 60.0) -> None:
    """Poll /readyz until the publisher reports the broker reachable."""
    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).status != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"/readyz not ready after {timeout} s")
        await asyncio.sleep(0.2)
