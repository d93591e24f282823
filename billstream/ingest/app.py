"""The ingest application: routes, and the publisher opened once per process (no singletons)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web
from prometheus_client import CollectorRegistry

from billstream.allowlist import EventAllowlist
from billstream.ingest.admission import Admission, LoopLag
from billstream.ingest.deadlines import Deadlines
from billstream.ingest.endpoints import PLATFORM_PATH, endpoints
from billstream.ingest.kafka_publisher import KafkaPublisher
from billstream.ingest.metrics import Endpoint, IngestMetrics
from billstream.ingest.publisher import Publisher
from billstream.ingest.signature import SignatureVerifier
from billstream.ingest.thin import NotificationParser
from billstream.ingest.webhook import WebhookIntake
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, STRIPE_THIN_EVENTS
from billstream.web import add_probe_routes

WEBHOOK_PATH = PLATFORM_PATH
THIN_WEBHOOK_PATH = "/webhooks/stripe/thin"

PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", IngestMetrics)
LOOP_LAG = web.AppKey("loop_lag", LoopLag)


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    publisher: Publisher | None = None,
) -> web.Application:
    """Build the app; `publisher` defaults to Kafka (tests pass an in-process one)."""
    registry = registry if registry is not None else CollectorRegistry()
    publisher = publisher if publisher is not None else KafkaPublisher(settings)
    metrics = IngestMetrics(registry, settings.metrics_account_labels)
    allowlist = EventAllowlist(settings.stripe_webhook_allowed_events)
    deadlines = Deadlines(settings.ingest_publish_timeout)
    # One bound for the process: every endpoint waits on the same producer.
    lag = LoopLag(gauge=metrics.loop_lag)
    admission = Admission(
        settings.ingest_max_in_flight,
        metrics.in_flight,
        lag,
        settings.ingest_max_loop_lag_ms / 1000,
    )
    # What every endpoint shares: one producer, allowlist, deadline and in-flight bound.
    intake = partial(
        WebhookIntake,
        allowlist=allowlist,
        publisher=publisher,
        max_body=settings.stripe_webhook_max_body,
        deadlines=deadlines,
        admission=admission,
        read_timeout=settings.ingest_read_timeout,
        retry_after=settings.ingest_overloaded_retry_after,
    )
    tolerance = settings.stripe_webhook_tolerance
    app = web.Application()
    for endpoint in endpoints(settings):  # each path verifies with its own secrets only
        snapshot = intake(
            verifier=SignatureVerifier(endpoint.secrets, tolerance),
            metrics=metrics.of(Endpoint.CONNECT if endpoint.connect else Endpoint.SNAPSHOT),
            topic=settings.topic(STRIPE_EVENTS),
            endpoint=endpoint,
        )
        app.router.add_post(endpoint.path, snapshot.handle)
    # Thin notifications of the platform's destination, with the platform's secrets.
    thin = intake(
        verifier=SignatureVerifier(settings.webhook_secret_values(), tolerance),
        metrics=metrics.of(Endpoint.THIN),
        topic=settings.topic(STRIPE_THIN_EVENTS),
        thin=NotificationParser(tolerance),
    )
    app.router.add_post(THIN_WEBHOOK_PATH, thin.handle)
    app[PUBLISHER] = publisher
    app[METRICS] = metrics
    app[LOOP_LAG] = lag
    app.cleanup_ctx.append(_publisher_lifetime)
    app.cleanup_ctx.append(_loop_lag_lifetime)
    add_probe_routes(app, registry, ready=lambda: app[PUBLISHER].ready)
    return app


async def _publisher_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Start the publisher with the server and drain it on shutdown."""
    await app[PUBLISHER].start()
    yield
    await app[PUBLISHER].stop()


async def _loop_lag_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Measure the loop's lag while the server runs (admission sheds on it)."""
    task = asyncio.create_task(app[LOOP_LAG].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
