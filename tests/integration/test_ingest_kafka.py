"""A signed webhook lands on stripe.events byte-for-byte, keyed and with the contract headers."""

from __future__ import annotations

import asyncio
import time

import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.ingest import main
from billstream.ingest.app import create_app
from billstream.ingest.endpoints import CONNECT_PATH
from billstream.ingest.kafka_publisher import KafkaPublisher
from billstream.ingest.publisher import Record
from billstream.librdkafka import IDLE_POLL
from tests.integration.ingest_support import post_signed, stripe_event, wait_ready
from tests.integration.kafka import consume
from tests.support.settings import SettingsFactory


async def total_records(bootstrap: str, topic: str, partitions: int) -> int:
    """How many records `topic` holds (its end offsets summed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


CONNECT_SECRET = "whsec_connect_endpoint_secret"


async def test_signed_event_arrives_byte_for_byte(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    unique_id: str,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap, stripe_connect_webhook_secrets=CONNECT_SECRET
    )
    client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
    await wait_ready(client)  # also creates the topic
    topic = settings.topic("stripe.events")

    ignored = stripe_event(f"evt_ign_{unique_id}", "cus_x", type="charge.succeeded")
    assert await post_signed(client, ignored) == (200, "ignored")
    # A connected account's event, on the Connect endpoint with its own secret.
    body = stripe_event(f"evt_{unique_id}", f"cus_{unique_id}", account="acct_42")
    before = time.time_ns() // 1_000_000
    assert await post_signed(client, body, path=CONNECT_PATH, secret=CONNECT_SECRET) == (
        200,
        "queued",
    )
    after = time.time_ns() // 1_000_000

    [record] = await consume(kafka_bootstrap, topic, 1)
    assert record.value == body
    assert record.key == f"acct_42/cus_{unique_id}".encode()
    headers = dict(record.headers)
    assert set(headers) == {"stripe-event-id", "stripe-event-type", "received-at", "stripe-account"}
    assert headers["stripe-event-id"] == f"evt_{unique_id}".encode()
    assert headers["stripe-event-type"] == b"invoice.paid"
    assert headers["stripe-account"] == b"acct_42"
    assert before <= int(headers["received-at"]) <= after
    # the ignored event was not written
    assert await total_records(kafka_bootstrap, topic, settings.billstream_topic_partitions) == 1


async def test_customers_land_on_the_partitions_backfill_uses(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    unique_id: str,
) -> None:
    """Same partitioner as Java clients and aiokafka (backfill): murmur2 of the customer id."""
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
    await wait_ready(client)
    customers = [f"cus_{unique_id}_{n}" for n in range(8)]
    for n, customer in enumerate(customers):
        assert await post_signed(client, stripe_event(f"evt_{n}", customer)) == (200, "queued")

    records = await consume(kafka_bootstrap, settings.topic("stripe.events"), len(customers))
    partitions = list(range(settings.billstream_topic_partitions))
    assert sorted(record.key for record in records) == sorted(c.encode() for c in customers)
    for record in records:
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)


def test_publisher_is_acknowledged_on_uvloop(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    """Delivery reports are polled with loop timers: they must keep resolving on ingest's loop,
    for a burst (busy polling) and for a record sent while idle (the idle poll is rescheduled)."""
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    topic = settings.topic("stripe.events")

    async def publish() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        publisher = KafkaPublisher(settings)
        await publisher.start()
        try:
            for _ in range(600):  # up to a minute
                if publisher.ready:
                    break
                await asyncio.sleep(0.1)
            burst = [publisher.publish(Record(topic, b"k%d" % n, b"v", [])) for n in range(200)]
            async with asyncio.timeout(30):
                await asyncio.gather(*burst)
            await asyncio.sleep(3 * IDLE_POLL)  # idle again
            async with asyncio.timeout(30):
                await publisher.publish(Record(topic, b"k", b"after idle", []))
        finally:
            await publisher.stop()

    with asyncio.Runner(loop_factory=main.new_event_loop) as runner:
        runner.run(publish())
    count = asyncio.run(total_records(kafka_bootstrap, topic, settings.billstream_topic_partitions))
    assert count == 201
