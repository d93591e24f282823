"""Broker down: 503 within the publish timeout, never a 2xx; after a restart the retry is queued.

Runs against a PRIVATE broker (fixture `private_broker`): the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.ingest.app import create_app
from billstream.stripe_signing import sign_payload
from tests.integration.ingest_support import SECRET, post_signed, stripe_event, wait_ready
from tests.integration.kafka import consume
from tests.support.private_broker import PrivateBroker
from tests.support.settings import SettingsFactory

PUBLISH_TIMEOUT = 2.0
SLACK = 3.0  # generous: an upper bound, not a timing measurement


async def test_outage_answers_503_and_the_retry_after_restart_is_queued(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    private_broker: PrivateBroker,
    unique_id: str,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=private_broker.bootstrap, ingest_publish_timeout=PUBLISH_TIMEOUT
    )
    client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
    await wait_ready(client)
    before = stripe_event(f"evt_a_{unique_id}", "cus_1")
    assert await post_signed(client, before) == (200, "queued")

    await asyncio.to_thread(private_broker.stop)
    during = stripe_event(f"evt_b_{unique_id}", "cus_2")
    signature = sign_payload(during, SECRET)
    for _ in range(3):  # the first may wait for the timeout, later ones fail fast
        started = time.monotonic()
        assert await post_signed(client, during, signature) == (503, "unavailable")
        assert time.monotonic() - started < PUBLISH_TIMEOUT + SLACK
    assert (await client.get("/readyz")).status == 503

    await asyncio.to_thread(private_broker.start)
    await wait_ready(client)
    assert await post_signed(client, during, signature) == (200, "queued")

    records = await consume(private_broker.bootstrap, settings.topic("stripe.events"), 2)
    assert sorted(record.value for record in records) == sorted([before, during])
