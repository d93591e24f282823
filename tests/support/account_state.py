"""Builders for account-state values and records (the api unit tests and the integration tests)."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord

from billstream.api.state import AccountStateMessage


def state_value(customer_id: str, version: int, **fields: Any) -> dict[str, Any]:
    """A contract account-state JSON object (DESIGN.md), fields overridable."""
    value: dict[str, Any] = {
        "customer_id": customer_id,
        "plan": "PRO",
        "interval": "month",
        "subscription_id": f"sub_{customer_id}",
        "subscription_status": "active",
        "payment_state": "ok",
        "cancel_at_period_end": False,
        "pending_plan": None,
        "current_period_end": 1767225600,
        "deleted": False,
        "version": version,
        "updated_by_event": f"evt_{customer_id}_{version}",
        "updated_at": 1767225600 + version,
        "updated_by_event_type": "customer.subscription.updated",
    }
    value.update(fields)
    return value


def make_state(customer_id: str, version: int, **fields: Any) -> AccountStateMessage:
    return AccountStateMessage.model_validate(state_value(customer_id, version, **fields))


def record(
    value: bytes | dict[str, Any] | None,
    *,
    offset: int,
    key: bytes | None = None,
    partition: int = 0,
    topic: str = "billing.account-state",
) -> ConsumerRecord[bytes, bytes]:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    if key is None and isinstance(value, dict):
        key = str(value["customer_id"]).encode()
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=raw,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(raw or b""),
        headers=(),
    )
