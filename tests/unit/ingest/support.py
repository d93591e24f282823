"""In-process stand-ins and builders for ingest unit tests (never used against a broker)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from prometheus_client import CollectorRegistry

from billstream.ingest.publisher import PublishError, Record, RecordTooLarge

SECRET = "whsec_test_secret"
CONNECT_SECRET = "whsec_connect_secret"  # the Connect endpoint\'s own
Mode = Literal["ack", "fail", "refuse", "hang", "hold", "too_large"]


class FakePublisher:
    """The publisher interface in memory: acknowledges, fails, refuses at once or hangs (`mode`);
    "hold" keeps each future in `held` until the test resolves it (a slow broker)."""

    def __init__(self, mode: Mode = "ack") -> None:
        self.mode: Mode = mode
        self.connected = True
        self.records: list[Record] = []
        self.held: list[tuple[Record, asyncio.Future[None]]] = []
        self._held_more = asyncio.Condition()
        self.started = False
        self.stopped = False

    @property
    def ready(self) -> bool:
        return self.started and self.connected

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def _notify_held(self) -> None:
        async with self._held_more:
            self._held_more.notify_all()

    async def wait_held(self, count: int) -> None:
        """Until `count` records are held (the requests reached the broker)."""
        async with asyncio.timeout(10), self._held_more:
            await self._held_more.wait_for(lambda: len(self.held) >= count)

    def release_held(self) -> None:
        """Acknowledge every held record, as a broker catching up would."""
        for record, acknowledged in self.held:
            self.records.append(record)
            acknowledged.set_result(None)
        self.held.clear()

    def publish(self, record: Record) -> asyncio.Future[None]:
        if self.mode == "refuse":  # e.g. the broker is known to be unreachable
            raise PublishError("broker unreachable")
        if self.mode == "too_large":  # the topic accepts smaller records than the body
            raise RecordTooLarge("larger than the topic accepts")
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.mode == "fail":
            acknowledged.set_exception(PublishError("broker unreachable"))
        elif self.mode == "ack":
            self.records.append(record)
            acknowledged.set_result(None)
        elif self.mode == "hold":
            self.held.append((record, acknowledged))
            asyncio.get_running_loop().create_task(self._notify_held())
        return acknowledged  # "hang": never resolved


def event_body(
    event_type: str = "invoice.paid",
    event_id: str = "evt_1",
    customer: str | None = "cus_1",
    account: str | None = None,
    **extra: Any,
) -> bytes:
    """A Stripe-shaped event, pretty-printed like Stripe sends it (so re-serialising shows)."""
    obj: dict[str, Any] = {"id": "in_1", "object": event_type.split(".")[0]}
    if customer is not None:
        obj["customer"] = customer
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": 1_767_225_600,
        "data": {"object": obj},
        **extra,
    }
    if account is not None:
        event["account"] = account
    return json.dumps(event, indent=2).encode()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A metric's current value summed over the series carrying `labels` (0 when none exists).

    Ingest's series also carry `endpoint`; a test naming no endpoint sees both added up.
    """
    return sum(
        found.value
        for family in registry.collect()
        for found in family.samples
        if found.name == name and all(found.labels.get(k) == v for k, v in labels.items())
    )
