"""Wiring: the Faust app, its table, topics and record handler, from Settings (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TableT, TopicT
from prometheus_client import CollectorRegistry, Gauge

from billstream.processors.config import ReducerConfig
from billstream.processors.handler import App, EventProcessor
from billstream.processors.metrics import ProcessorMetrics
from billstream.processors.probes import add_probe_pages
from billstream.processors.reconcile import register_reconcile_timer
from billstream.processors.runtime.app import create_faust_app
from billstream.processors.runtime.direct import DirectConsumer
from billstream.processors.runtime.table_writer import TableWriter
from billstream.settings import Settings
from billstream.tables.tables import customer_state_table
from billstream.topics import (
    ACCOUNT_STATE,
    INVOICE_EPISODES,
    STRIPE_EVENTS,
    STRIPE_EVENTS_DLQ,
    STRIPE_THIN_EVENTS,
)


@dataclass
class Worker:
    """The assembled worker; tests reach the table, topics and metrics through it."""

    app: faust.App
    table: TableT[bytes, bytes]
    source: TopicT
    processor: EventProcessor
    metrics: ProcessorMetrics
    registry: CollectorRegistry


def raw_topic(app: faust.App, name: str, **options: Any) -> TopicT:
    """A topic of raw key/value bytes (no Faust codec on the hot path)."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
        **options,
    )


def build_worker(
    settings: Settings, registry: CollectorRegistry | None = None, **app_overrides: Any
) -> Worker:
    """Declare everything on a fresh Faust app; nothing connects until the app starts."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ProcessorMetrics(registry, settings.billing_plan_order)
    app = create_faust_app(settings, **app_overrides)
    table = customer_state_table(app, settings.billstream_topic_partitions)
    source = raw_topic(app, settings.topic(STRIPE_EVENTS))
    processor = EventProcessor(
        table=TableWriter(table),
        app=cast(App, app),  # its producer is a LibrdkafkaProducer (app.py), which has `produce`
        output_topic=settings.topic(ACCOUNT_STATE),
        dlq_topic=settings.topic(STRIPE_EVENTS_DLQ),
        metrics=metrics,
        config=ReducerConfig.from_settings(settings),
        # Entitlements beyond a summary's first page are fetched by the resolver (API key).
        refetch_topic=(
            settings.topic(STRIPE_THIN_EVENTS) if settings.stripe_api_key is not None else None
        ),
        episodes_topic=settings.topic(INVOICE_EPISODES),
    )

    app.topics.add(source)  # subscribed like an agent's topic; records go to the processor
    app.source_handlers[source.get_topic_name()] = processor.handle
    add_probe_pages(app, registry)
    Gauge(
        "billstream_worker_consumer_lag_messages",
        "stripe.events records on this worker's partitions not handled yet",
        registry=registry,
    ).set_function(lambda: cast(DirectConsumer, app.consumer).lag(source.get_topic_name()))
    if settings.reconcile_cron_enabled:  # deferred downgrades via Stripe's API (docs/stripe-api.md)
        register_reconcile_timer(app, settings, table, metrics)
    return Worker(app, table, source, processor, metrics, registry)
