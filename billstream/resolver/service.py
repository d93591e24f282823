"""`billstream resolve`: consume stripe.thin-events, publish v1 events to stripe.events.

Its own process, not a worker agent: each record costs one or more rate-limited Stripe calls
(tens of milliseconds to seconds under 429s), which must never stall the reducer's partitions;
it scales with Stripe's rate limit rather than with the event volume, and restarts (or stays
down without a key) without a worker rebalance. At least once: a partition's offsets are
committed only after every event resolved from it was acknowledged by the broker (acks=all),
and the reducer's de-duplication by event id makes a redelivery harmless. A record that cannot
be resolved after stripe_calls' retries goes to stripe.events.dlq with its reason and
`replay-to: stripe.thin-events`, and the stream goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.processors.dlq import HEADER_REPLAY_TO, dlq_headers, header_items, header_value
from billstream.resolver.metrics import ResolverMetrics
from billstream.resolver.resolve import DEAD_LETTERED, HEALTH, Outcome, Resolver
from billstream.routing import HEADER_ACCOUNT, HEADER_RECEIVED_AT, event_key, record_headers
from billstream.settings import Settings
from billstream.stripe_calls import StripeCalls, shared_limiter
from billstream.stripe_client import StripeNotConfigured, make_stripe_client
from billstream.topics import STRIPE_EVENTS, STRIPE_EVENTS_DLQ, STRIPE_THIN_EVENTS, ensure_topics
from billstream.web import add_probe_routes, serve_until_stopped

log = logging.getLogger(__name__)

GROUP_SUFFIX = "-resolver"
BATCH = 100


def group_id(settings: Settings) -> str:
    return settings.billstream_app_id + GROUP_SUFFIX


def _received_at(headers: list[tuple[str, bytes]]) -> int:
    """When ingest received the notification (so lag metrics span the whole path), else now."""
    raw = header_value(headers, HEADER_RECEIVED_AT)
    try:
        return int(raw) if raw is not None else time.time_ns() // 1_000_000
    except ValueError:
        return time.time_ns() // 1_000_000


class ResolverLoop:
    """The consume → resolve → publish → commit loop; `ready` once consuming."""

    def __init__(self, settings: Settings, resolver: Resolver, metrics: ResolverMetrics) -> None:
        self.settings = settings
        self.resolver = resolver
        self.metrics = metrics
        self.ready = False
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
        """Built on the running loop (aiokafka's requirement), sized like stripe.events."""
        settings = self.settings
        options = aiokafka_options(settings)
        size = record_bytes(settings.stripe_webhook_max_body)
        consumer = AIOKafkaConsumer(
            settings.topic(STRIPE_THIN_EVENTS),
            **options,
            group_id=group_id(settings),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=size,
        )
        producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, max_request_size=size
        )
        return consumer, producer

    async def run(self) -> None:
        await ensure_topics(self.settings)
        consumer, self.producer = self._clients()
        await self.producer.start()
        try:
            await consumer.start()
            try:
                self.ready = True
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                    if not batches:
                        continue
                    # Partitions side by side (Stripe's latency, not its rate, would bound one
                    # at a time); each partition's records in order, as they were keyed.
                    await asyncio.gather(*(self._in_order(rs) for rs in batches.values()))
                    # Only now: every output of these records is acknowledged (at least once).
                    await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
            finally:
                self.ready = False
                await consumer.stop()
        finally:
            await self.producer.stop()

    async def _in_order(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            await self.handle(record)

    async def handle(self, record: ConsumerRecord) -> Outcome:
        """Resolve and publish one record; returns once its output was acknowledged."""
        headers = header_items(record.headers)
        raw_account = header_value(headers, HEADER_ACCOUNT)
        account = raw_account.decode() if raw_account else None
        outcome = await asyncio.to_thread(self.resolver.resolve, record.value or b"", account)
        self.metrics.requests.labels(outcome.result).inc()
        if outcome.result == HEALTH and outcome.health_type:
            self.metrics.health.labels(outcome.health_type).inc()
        elif outcome.result == DEAD_LETTERED and outcome.reason:
            await self._dead_letter(record, headers, outcome.reason)
            log.warning(
                "resolver: dead-lettered %s: %s",
                header_value(headers, "stripe-event-id"),
                outcome.detail,
                extra={"reason": outcome.reason},
            )
        elif outcome.event is not None:
            await self._publish(outcome.event, headers, outcome.source)
        return outcome

    async def _publish(
        self, event: dict[str, Any], headers: list[tuple[str, bytes]], source: str | None
    ) -> None:
        out = record_headers(event, _received_at(headers), source)
        assert self.producer is not None, "handle() runs inside run()"
        await self.producer.send_and_wait(
            self.settings.topic(STRIPE_EVENTS),
            value=orjson.dumps(event),
            # As ingest keys it: a connected account's customer is `acct_…/cus_…`.
            key=event_key(event, self.settings.stripe_account_id).encode(),
            headers=out,
        )

    async def _dead_letter(
        self, record: ConsumerRecord, headers: list[tuple[str, bytes]], reason: str
    ) -> None:
        kept = [(k, v) for k, v in dlq_headers(headers, reason) if k != HEADER_REPLAY_TO]
        assert self.producer is not None, "handle() runs inside run()"
        await self.producer.send_and_wait(
            self.settings.topic(STRIPE_EVENTS_DLQ),
            value=record.value,
            key=record.key,
            headers=[*kept, (HEADER_REPLAY_TO, STRIPE_THIN_EVENTS.encode())],
        )
        self.metrics.dead_letters.labels(reason).inc()


def build_app(loop: ResolverLoop) -> web.Application:
    app = web.Application()
    add_probe_routes(app, loop.metrics.registry, ready=lambda: loop.ready)

    async def consuming(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop.run(), name="resolver")
        task.add_done_callback(_exit_on_failure)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(consuming)
    return app


def _exit_on_failure(task: asyncio.Task[None]) -> None:
    """The loop only ends by cancellation; anything else is fatal (restart, and resume)."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("resolver stopped: %r", task.exception())
        sys.exit(1)


def resolver_for(settings: Settings) -> Resolver:
    """The Stripe client without stripe-python's retries: stripe_calls' are the only ones."""
    client = make_stripe_client(settings, max_network_retries=0)
    return Resolver(client, StripeCalls(shared_limiter(settings.stripe_api_rate)))


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        resolver = resolver_for(settings)
    except StripeNotConfigured as error:
        print(f"billstream resolve: {error} (the resolver calls Stripe)", file=sys.stderr)
        return 2
    loop = ResolverLoop(settings, resolver, ResolverMetrics.create())
    app = build_app(loop)
    asyncio.run(serve_until_stopped(app, settings.resolver_port, settings.resolver_host))
    return 0
