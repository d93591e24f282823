"""The worker's record handler as the consumer calls it: table writes, outputs, DLQ, metrics.

Records are Faust `Message`s handed to the handler the worker registered for stripe.events
(processors/runtime/direct.py). The producer's `send` is faked (no broker); the table is the
real Faust table on a memory store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from faust.types import Message
from prometheus_client import CollectorRegistry

from billstream.processors.worker import Worker, build_worker
from billstream.routing import record_headers
from billstream.tables.codec import decode_state, encode_state
from billstream.tables.tables import CUSTOMER_STATE_TABLE
from billstream.topics import (
    ACCOUNT_STATE,
    INVOICE_EPISODES,
    STRIPE_EVENTS,
    STRIPE_EVENTS_DLQ,
    STRIPE_THIN_EVENTS,
)
from tests.support import factories as f
from tests.support.settings import SettingsFactory

CUSTOMER = f.CUSTOMER.encode()


@dataclass
class FakeProducer:
    """Records what the agent sends, per topic; every delivery succeeds at once."""

    sent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def on_delivery(self, topic: str, listener: Any) -> None:
        pass  # every record is delivered; only a durable store keeps changelog offsets

    async def produce(
        self, topic: str, key: Any, value: Any, *, partition: Any = None, headers: Any = None
    ) -> None:
        self.sent.setdefault(topic, []).append(
            {"key": key, "value": value, "partition": partition, "headers": headers}
        )


@pytest.fixture
async def worker(make_settings: SettingsFactory) -> Worker:
    settings = make_settings(
        billing_plan_map=",".join(f"{k}={v}" for k, v in f.PLAN_MAP.items()),
        worker_web_port=16066,  # never bound: the app is not started
    )
    built = build_worker(settings, CollectorRegistry())
    app = built.app
    app.loop = asyncio.get_running_loop()
    app.finalize()
    app.conf.store = "memory://"  # type: ignore[assignment]  # Faust's URL setting parses a str
    app.flow_control.resume()
    app.producer = FakeProducer()  # type: ignore[assignment]
    return built


@dataclass
class Source:
    """Hands records to the worker's stripe.events handler like the consumer does."""

    worker: Worker
    offset: int = 0

    async def put(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        topic = self.worker.source.get_topic_name()
        assert topic.endswith(STRIPE_EVENTS)
        handle = self.worker.app.source_handlers[topic]  # type: ignore[attr-defined]
        message = Message(topic, 0, self.offset, 0.0, 0, headers, key, value, None)
        self.offset += 1
        await handle(message)


@contextlib.asynccontextmanager
async def source_of(worker: Worker) -> AsyncIterator[Source]:
    yield Source(worker)


def record(event: dict[str, Any], received_at_ms: int = 1_000) -> dict[str, Any]:
    """The Source.put() arguments of the Kafka record ingest would publish for `event`."""
    return {
        "key": CUSTOMER,
        "value": orjson.dumps(event),
        "headers": record_headers(event, received_at_ms),
    }


def sent(worker: Worker, topic: str) -> list[dict[str, Any]]:
    """Records sent to the topic whose name ends with `topic` (prefixes vary per test)."""
    producer = worker.app.producer
    assert isinstance(producer, FakeProducer)
    return [r for name, records in producer.sent.items() if name.endswith(topic) for r in records]


def sample(worker: Worker, name: str, **labels: str) -> float:
    value = worker.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def created(created_at: int) -> dict[str, Any]:
    return f.subscription_event(
        "customer.subscription.created", created=created_at, prices=[f.pro_monthly()]
    )


async def test_a_state_change_is_stored_and_published_keyed_by_customer(worker: Worker) -> None:
    event = created(100)
    async with source_of(worker) as source:
        await source.put(**record(event))

    [published] = sent(worker, ACCOUNT_STATE)
    assert published["key"] == CUSTOMER
    account = orjson.loads(published["value"])
    assert account["customer_id"] == f.CUSTOMER
    assert (account["plan"], account["version"], account["updated_by_event"]) == (
        "PRO",
        1,
        event["id"],
    )
    stored = decode_state(worker.table[CUSTOMER])
    assert stored is not None
    assert stored["account"]["version"] == 1
    [change] = sent(worker, f"{CUSTOMER_STATE_TABLE}-changelog")
    assert change == {
        "key": CUSTOMER, "value": worker.table[CUSTOMER], "partition": 0, "headers": None
    }  # fmt: skip
    assert event["id"] in stored["seen"]
    assert (
        sample(worker, "stripe_subscription_plan_changed_total", from_plan="FREE", to_plan="PRO")
        == 1
    )


async def test_an_event_that_changes_no_account_field_is_remembered_but_not_published(
    worker: Worker,
) -> None:
    noop = f.customer_event("customer.updated", created=200)
    async with source_of(worker) as source:
        await source.put(**record(created(100)))
        await source.put(**record(noop))

    assert len(sent(worker, ACCOUNT_STATE)) == 1
    stored = decode_state(worker.table[CUSTOMER])
    assert stored is not None
    assert noop["id"] in stored["seen"]


async def test_a_duplicate_is_counted_and_re_emits_the_current_view_unchanged(
    worker: Worker,
) -> None:
    event = created(100)
    async with source_of(worker) as source:
        await source.put(**record(event))
        before = worker.table[CUSTOMER]
        await source.put(**record(event))

    first, again = sent(worker, ACCOUNT_STATE)
    assert again == first  # same key, same version, same bytes
    assert worker.table[CUSTOMER] == before
    assert sample(worker, "stripe_webhook_duplicate_total") == 1
    assert (
        sample(worker, "stripe_subscription_plan_changed_total", from_plan="FREE", to_plan="PRO")
        == 1
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"id": "evt_1", "type": "invoice.paid"}', "missing_field"),
        (
            b'{"id": "evt_1", "type": "invoice.paid", "created": "soon", "data": {"object": {}}}',
            "bad_type",
        ),
    ],
)
async def test_poison_goes_to_the_dlq_with_its_reason_and_the_stream_goes_on(
    worker: Worker, body: bytes, reason: str
) -> None:
    headers = [("stripe-event-id", b"evt_1"), ("received-at", b"1000")]
    async with source_of(worker) as source:
        await source.put(key=CUSTOMER, value=body, headers=headers)
        await source.put(**record(created(100)))

    [dead] = sent(worker, STRIPE_EVENTS_DLQ)
    assert (dead["key"], dead["value"]) == (CUSTOMER, body)
    assert dead["headers"] == [*headers, ("error", reason.encode())]
    assert sample(worker, "billstream_dlq_total", reason=reason) == 1
    assert len(sent(worker, ACCOUNT_STATE)) == 1  # the next event was applied


async def test_a_record_without_key_is_dead_lettered(worker: Worker) -> None:
    async with source_of(worker) as source:
        await source.put(key=None, value=orjson.dumps(created(100)), headers=[])

    [dead] = sent(worker, STRIPE_EVENTS_DLQ)
    assert dead["headers"] == [("error", b"missing_key")]
    assert sample(worker, "billstream_dlq_total", reason="missing_key") == 1
    assert not sent(worker, ACCOUNT_STATE)


async def test_an_unexpected_reducer_failure_is_dead_lettered_as_reducer_error(
    worker: Worker,
) -> None:
    async with source_of(worker) as source:
        worker.table.data[CUSTOMER] = encode_state({"schema": 999})  # a future release wrote it
        await source.put(**record(created(100)))
        await source.put(key=b"cus_other", value=orjson.dumps(created(100)), headers=[])

    [dead] = sent(worker, STRIPE_EVENTS_DLQ)
    assert dict(dead["headers"])["error"] == b"reducer_error"
    assert sample(worker, "billstream_dlq_total", reason="reducer_error") == 1
    assert [call["key"] for call in sent(worker, ACCOUNT_STATE)] == [b"cus_other"]


async def test_event_lag_is_processed_time_minus_the_received_at_header(worker: Worker) -> None:
    async with source_of(worker) as source:
        await source.put(**record(created(100), received_at_ms=1_000))  # 1970: lag of decades
        await source.put(key=CUSTOMER, value=b"{not json", headers=[("received-at", b"garbage")])

    assert sample(worker, "billstream_event_lag_seconds_count") == 1
    assert sample(worker, "billstream_event_lag_seconds_sum") > 50 * 365 * 86400


async def test_a_summary_with_more_entitlements_publishes_a_fetch_request_for_the_resolver(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(stripe_api_key="sk_test_entitlements", worker_web_port=16068)
    built = build_worker(settings, CollectorRegistry())
    built.app.loop = asyncio.get_running_loop()
    built.app.finalize()
    built.app.conf.store = "memory://"  # type: ignore[assignment]
    built.app.producer = FakeProducer()  # type: ignore[assignment]
    partial = f.entitlements_event([f"feature_{n:02d}" for n in range(11)], created=100)
    partial["account"] = "acct_connected"  # a Connect event: fetched on that account
    async with source_of(built) as source:
        await source.put(**record(f.entitlements_event(["api"], created=50)))  # complete
        await source.put(**record(partial))
        await source.put(**record(partial))  # a redelivery asks again (still incomplete)

    request, again = sent(built, STRIPE_THIN_EVENTS)
    assert (again["key"], again["value"]) == (request["key"], request["value"])
    assert request["key"] == CUSTOMER
    rfq = "rfq_" + hashlib.sha256(f"entitlements:{f.CUSTOMER}:100".encode()).hexdigest()[:24]
    assert orjson.loads(request["value"]) == {
        "object": "billstream.refetch_request",
        "id": rfq,
        "created": 100,
        "customer": f.CUSTOMER,
        "related_object": {
            "id": f.CUSTOMER,
            "type": "entitlements.active_entitlement_summary",
            "url": f"/v1/entitlements/active_entitlements?customer={f.CUSTOMER}",
        },
        "reason": "entitlements_has_more",
    }
    headers = dict(request["headers"])
    assert headers["stripe-event-id"] == rfq.encode()
    assert headers["stripe-event-type"] == b"billstream.refetch_request"
    assert int(headers["received-at"]) > 0
    assert headers["stripe-account"] == b"acct_connected"
    assert headers["source"] == b"refetch"
    published = [orjson.loads(r["value"]) for r in sent(built, ACCOUNT_STATE)]
    assert [len(a["features"]) for a in published] == [1, 10, 10]  # the 10 it has, at once


async def test_without_an_api_key_nothing_is_requested(worker: Worker) -> None:
    partial = f.entitlements_event([f"feature_{n:02d}" for n in range(11)], created=100)
    async with source_of(worker) as source:
        await source.put(**record(partial))
    assert sent(worker, STRIPE_THIN_EVENTS) == []
    [account] = sent(worker, ACCOUNT_STATE)
    assert len(orjson.loads(account["value"])["features"]) == 10


async def test_episode_changes_are_published_keyed_by_invoice_and_kind(worker: Worker) -> None:
    failed = f.invoice_event("invoice.payment_failed", created=1_000)
    async with source_of(worker) as source:
        await source.put(**record(created(100)))
        await source.put(**record(failed))
        await source.put(**record(f.invoice_event("invoice.paid", created=2_000)))
        await source.put(**record(failed))  # a redelivery re-emits the episode as it is now

    records = sent(worker, INVOICE_EPISODES)
    assert [r["key"] for r in records] == [f"{f.INVOICE}:dunning".encode()] * 3
    states = [orjson.loads(r["value"]) for r in records]
    assert [(s["state"], s["version"]) for s in states] == [
        ("open", 1),
        ("recovered", 2),
        ("recovered", 2),
    ]


async def test_an_ambiguous_same_second_tie_publishes_a_subscription_refetch_request(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(stripe_api_key="sk_test_ties", worker_web_port=16069)
    built = build_worker(settings, CollectorRegistry())
    built.app.loop = asyncio.get_running_loop()
    built.app.finalize()
    built.app.conf.store = "memory://"  # type: ignore[assignment]
    built.app.producer = FakeProducer()  # type: ignore[assignment]
    past_due = f.subscription_event(created=100, status="past_due")
    active = f.subscription_event(created=100, status="active")
    async with source_of(built) as source:
        await source.put(**record(past_due))
        await source.put(**record(active))  # same second, no rule orders them

    [request] = sent(built, STRIPE_THIN_EVENTS)
    assert request["key"] == CUSTOMER
    seed = f"subscription:{f.CUSTOMER}:{f.SUBSCRIPTION}:100"
    rfq = "rfq_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    assert orjson.loads(request["value"]) == {
        "object": "billstream.refetch_request",
        "id": rfq,
        "created": 100,
        "customer": f.CUSTOMER,
        "related_object": {
            "id": f.SUBSCRIPTION,
            "type": "subscription",
            "url": f"/v1/subscriptions/{f.SUBSCRIPTION}",
        },
        "reason": "same_second_tie",
        "event_type": "customer.subscription.updated",
    }
    headers = dict(request["headers"])
    assert headers["stripe-event-id"] == rfq.encode()
    assert headers["source"] == b"refetch"
    assert sample(built, "billstream_ordering_ties_total", resolution="refetch_requested") == 1


async def test_without_an_api_key_a_tie_goes_to_the_later_delivery(worker: Worker) -> None:
    async with source_of(worker) as source:
        await source.put(**record(f.subscription_event(created=100, status="past_due")))
        await source.put(**record(f.subscription_event(created=100, status="active")))

    assert sent(worker, STRIPE_THIN_EVENTS) == []
    assert sample(worker, "billstream_ordering_ties_total", resolution="later_delivery") == 1
    accounts = [orjson.loads(r["value"]) for r in sent(worker, ACCOUNT_STATE)]
    assert accounts[-1]["subscription_status"] == "active"
