"""Backfill end to end: stripe-mock's Events API → the real broker, routed exactly like ingest."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import orjson
import stripe

from billstream.backfill import cli
from billstream.backfill.lister import events_newest_first
from billstream.backfill.publisher import Publisher, Spool
from billstream.backfill.runner import Plan, publish_spool, spool_events, starting_point
from billstream.cli import build_parser
from billstream.routing import routing_key
from billstream.topics import STRIPE_EVENTS, ensure_topics
from tests.integration.kafka import consume
from tests.integration.stripe_tools import record_count
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedEvents, RecordingClient, client_for, stripe_event

KEY = "sk_test_backfill"


def test_backfill_publishes_what_stripe_lists_once(
    make_settings: SettingsFactory, kafka_bootstrap: str, stripe_mock: str, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key=KEY,
        stripe_api_base=stripe_mock,
        stripe_webhook_allowed_events="*",  # stripe-mock's only event is a plan.created
    )
    topic = settings.topic(STRIPE_EVENTS)
    listed = stripe.StripeClient(KEY, base_addresses={"api": stripe_mock}).v1.events.list()
    assert listed.last_response is not None
    sent = orjson.loads(listed.last_response.body)["data"][0]
    argv = ["backfill", "--since", "1234567000", "--checkpoint", str(tmp_path / "cp.json")]

    assert cli.run(settings, build_parser("backfill").parse_args(argv)) == 0
    assert cli.run(settings, build_parser("backfill").parse_args(argv)) == 0  # resumes: nothing new

    (record,) = asyncio.run(consume(kafka_bootstrap, topic, 1))
    assert orjson.loads(record.value) == sent
    assert record.key == routing_key(sent).encode()
    headers = dict(record.headers)
    assert headers["source"] == b"backfill"
    assert headers["stripe-event-id"] == sent["id"].encode()
    assert headers["stripe-event-type"] == sent["type"].encode()
    assert int(headers["received-at"]) > 0
    assert asyncio.run(record_count(settings, topic)) == 1


def test_pages_are_published_oldest_first_per_customer(
    make_settings: SettingsFactory, kafka_bootstrap: str, stripe_mock: str, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap, stripe_api_key=KEY, stripe_api_base=stripe_mock
    )
    history = [stripe_event(i, 5_000 + i // 2, "invoice.paid", f"cus_{i % 5}") for i in range(250)]
    transport = RecordingClient(rewrite=PagedEvents(history))
    plan = Plan(since=5_000, patterns=("invoice.*",), checkpoint_path=tmp_path / "cp.json")

    async def backfill() -> int:
        await ensure_topics(settings)
        publisher = Publisher(settings)
        start, _ = starting_point(plan, publisher.topic)
        events = events_newest_first(client_for(settings, transport), 5_000, plan.patterns)
        await publisher.start()
        try:
            with Spool() as spool:
                listed = spool_events(events, start, spool)
                await publish_spool(spool, publisher, start, plan.checkpoint_path)
        finally:
            await publisher.stop()
        return listed

    assert asyncio.run(backfill()) == 250
    assert len(transport.sent) == 3  # pages of 100, 100 and 50

    records = asyncio.run(consume(kafka_bootstrap, settings.topic(STRIPE_EVENTS), 250))
    by_customer: dict[bytes, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        by_customer[record.key].append(orjson.loads(record.value)["id"])
    for customer, ids in by_customer.items():
        customer_events = [
            e for e in history if e["data"]["object"]["customer"] == customer.decode()
        ]
        assert ids == [e["id"] for e in customer_events]  # oldest first
    assert len(by_customer) == 5
