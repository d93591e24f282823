"""Invalidates the catalog when a `price.*` / `product.*` event passes through `stripe.events`.

The catalog is not account state: nothing is folded or written, the event only says "Stripe's
catalog changed, read it again", and the catalog is then re-read from Stripe's API (the source
of truth, whatever order events come in). Every api replica must see every such event, so this
reader joins no consumer group: it is assigned all partitions, starts at their ends (the
start-up refresh covers the past) and commits nothing. It reads only the `stripe-event-type`
header, never the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from billstream.api.billing.catalog import CatalogCache
from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.routing import HEADER_EVENT_TYPE
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS

CATALOG_PREFIXES = (b"price.", b"product.")
MAX_BACKOFF_SECONDS = 30.0
CleanupContext = Callable[[web.Application], AsyncIterator[None]]

log = logging.getLogger(__name__)


def is_catalog_event(headers: object) -> bool:
    """Whether a record's `stripe-event-type` header names a price or product event."""
    for name, value in headers or ():  # type: ignore[attr-defined]
        if name == HEADER_EVENT_TYPE and isinstance(value, bytes):
            return value.startswith(CATALOG_PREFIXES)
    return False


async def watch(settings: Settings, catalog: CatalogCache) -> None:
    """Read `stripe.events` from its end, invalidating on catalog events; until cancelled."""
    topic = settings.topic(STRIPE_EVENTS)
    kafka = AIOKafkaConsumer(
        **aiokafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=record_bytes(settings.stripe_webhook_max_body),
    )
    await kafka.start()
    try:
        partitions = await _partitions(kafka, topic)
        kafka.assign(partitions)
        await kafka.seek_to_end(*partitions)
        log.info("billing catalog: watching %s (%d partitions)", topic, len(partitions))
        while True:
            batch = await kafka.getmany(timeout_ms=1000, max_records=500)
            if any(is_catalog_event(r.headers) for rs in batch.values() for r in rs):
                log.info("billing catalog: price/product event seen; refreshing")
                catalog.invalidate()
    finally:
        await kafka.stop()


async def _partitions(kafka: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = kafka.partitions_for_topic(topic)
    for _ in range(50):  # metadata of a topic created a moment ago may lag a little
        if found:
            break
        await asyncio.sleep(0.2)
        await kafka.topics()  # a remote call: refreshes the metadata
        found = kafka.partitions_for_topic(topic)
    if not found:
        raise RuntimeError(f"topic {topic} has no partitions (does it exist?)")
    return [TopicPartition(topic, p) for p in sorted(found)]


async def keep_watching(settings: Settings, catalog: CatalogCache) -> None:
    delay = 0.5
    while True:
        try:
            await watch(settings, catalog)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("billing catalog watch failed: %s; retrying", str(error).splitlines()[0])
        await asyncio.sleep(delay)
        delay = min(MAX_BACKOFF_SECONDS, delay * 2)


def catalog_watch_service(settings: Settings, catalog: CatalogCache) -> CleanupContext:
    async def context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_watching(settings, catalog))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
