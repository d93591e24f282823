"""The whole chain carries STRIPE_WEBHOOK_MAX_BODY: a body ingest accepts is never a 503.

librdkafka's and the broker's default limit is about 1,000,000 bytes, below the 1 MiB body
limit; billstream sizes its producers and topics for the body limit, and a topic created by
someone else with a smaller limit gives a one-line error and 413s, never 503s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.ingest.app import create_app
from billstream.limits import record_bytes
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, TopicConfigError, ensure_topics
from tests.integration.ingest_support import post_signed, wait_ready
from tests.integration.kafka import consume
from tests.support.children import settings_env
from tests.support.settings import SettingsFactory

MAX_BODY = 1_048_576  # the default STRIPE_WEBHOOK_MAX_BODY


def body_of(size: int, event_id: str, customer: str) -> bytes:
    """A signed-able Stripe event of exactly `size` bytes (padding in metadata)."""
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": 1_767_225_600,
        "data": {
            "object": {
                "id": f"in_{event_id}",
                "object": "invoice",
                "customer": customer,
                "metadata": {"pad": ""},
            }
        },
    }
    bare = len(json.dumps(event).encode())
    event["data"]["object"]["metadata"]["pad"] = "x" * (size - bare)
    body = json.dumps(event).encode()
    assert len(body) == size
    return body


async def test_a_body_at_the_limit_is_queued_whole(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    unique_id: str,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
    await wait_ready(client)
    sizes = {"just over librdkafka's default": 1_000_100, "the limit": MAX_BODY}
    bodies = [
        body_of(size, f"evt_{n}_{unique_id}", f"cus_{unique_id}")
        for n, size in enumerate(sizes.values())
    ]
    for body in bodies:
        assert await post_signed(client, body) == (200, "queued")
    assert await post_signed(client, body_of(MAX_BODY + 1, "evt_over", "cus_x")) == (
        413,
        "too_large",
    )

    records = await consume(kafka_bootstrap, settings.topic(STRIPE_EVENTS), len(bodies))
    assert sorted(record.value for record in records) == sorted(bodies)


async def create_small_topic(settings: Settings, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topic = NewTopic(
            settings.topic(STRIPE_EVENTS),
            num_partitions=1,
            replication_factor=1,
            topic_configs={"max.message.bytes": str(max_message_bytes)},
        )
        await admin.create_topics([topic])
    finally:
        await admin.close()


async def test_a_topic_that_carries_less_is_named_at_start_up_and_answers_413(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    unique_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await create_small_topic(settings, 500_000)

    with pytest.raises(TopicConfigError) as raised:  # the worker's and `billstream topics`' check
        await ensure_topics(settings)
    message = str(raised.value)
    assert "\n" not in message
    assert settings.topic(STRIPE_EVENTS) in message
    assert "500000" in message
    assert str(record_bytes(MAX_BODY)) in message

    with caplog.at_level(logging.ERROR, logger="billstream.ingest.kafka_publisher"):
        client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
        await wait_ready(client)  # reachable: it serves what the topic can carry
    assert any("STRIPE_WEBHOOK_MAX_BODY" in r.getMessage() for r in caplog.records)
    small = body_of(10_000, f"evt_small_{unique_id}", f"cus_{unique_id}")
    assert await post_signed(client, small) == (200, "queued")
    large = body_of(600_000, f"evt_large_{unique_id}", f"cus_{unique_id}")
    assert await post_signed(client, large) == (413, "too_large")


async def test_the_worker_and_topics_command_stop_with_one_line(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await create_small_topic(settings, 500_000)
    for command in ("topics", "worker"):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "billstream.cli", command],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if "max.message.bytes" in line]
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("billstream: topic ")
        assert "Traceback" not in done.stderr
