"""Invalidates the catalog when a `price.*` / `product.*` event passes through `stripe.events`.

The catalog is not account state: nothing is folded or written, the event only says "Stripe's
catalog changed, read it again", and the catalog is then re-read from Stripe's API (the source
of truth, whatever order events come in). Every api replica must see every such event, so this
reader joins no consumer group: it is assigned all partitions, starts at their ends (a
refresh once it is positioned covers the past) and commits nothing. It reads only the
`stripe-event-type` header, never the body.
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
from billstream.topics import STRIPE_EVENTS, partition_numbers

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
    partitions = [TopicPartition(topic, p) for p in await partition_numbers(settings, topic)]
    kafka = AIOKafkaConsumer(
        **aiokafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=record_bytes(settings.stripe_webhook_max_body),
    )
    await kafka.start()
    try:
        kafka.assign(partitions)
        await kafka.seek_to_end(*partitions)
        for partition in partitions:
            await kafka.position(partition)  # resolve the end offsets now, not lazily
        log.info("billing catalog: watching %s (%d partitions)", topic, len(partitions))
        # A change between the start-up load and this position was seen by neither: re-read
        # once, so every later change is an event this reader sees.
        catalog.invalidate()
        while True:
            batch = await kafka.getmany(timeout_ms=1000, max_records=500)
            if any(is_catalog_event(r.headers) for rs in batch.values() for r in rs):
                log.info("billing catalog: price/product event seen; refreshing")
                catalog.invalidate()
    finally:
        await kafka.stop()


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
