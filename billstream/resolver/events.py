"""The synthetic v1 event for a thin notification without a snapshot event."""

from __future__ import annotations

import datetime
from typing import Any

SOURCE = "thin"


def event_type(notification_type: str) -> str:
    """`v1.customer.subscription.updated` → `customer.subscription.updated`."""
    return notification_type.removeprefix("v1.")


def unix_seconds(created: Any) -> int:
    """v2's RFC 3339 `created` (or, defensively, unix seconds) as v1's unix seconds."""
    if isinstance(created, int):
        return created
    text = str(created).replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(text).timestamp())


def synthetic_id(notification_id: str) -> str:
    """Deterministic: the same notification delivered twice is one event for the reducer."""
    return f"evt_thin_{notification_id}"


def thin_event(
    notification: dict[str, Any],
    fetched: dict[str, Any],
    *,
    api_version: str,
    account: str | None = None,
) -> dict[str, Any]:
    """The v1-shaped event: the related object as Stripe has it now, at the notification's time."""
    event: dict[str, Any] = {
        "id": synthetic_id(str(notification["id"])),
        "object": "event",
        "type": event_type(str(notification["type"])),
        "created": unix_seconds(notification.get("created")),
        "api_version": api_version,
        "data": {"object": fetched},
        "billstream_source": SOURCE,
        "livemode": bool(notification.get("livemode", False)),
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
    }
    if account:
        event["account"] = account
    return event
