"""The Faust app, configured only from our Settings object.

Faust reads unprefixed variables (`BROKER_URL`, `PROCESSING_GUARANTEE`, even `APP_ENV_PREFIX`)
that would override constructor arguments; an explicit prefix plus an empty environment
mapping makes the settings object the single source of configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Transport

from billstream import kafka_security
from billstream.limits import record_bytes
from billstream.processors.runtime.consumer import FetchBatching
from billstream.processors.runtime.direct import DirectConsumer, Handler
from billstream.processors.runtime.producer import LibrdkafkaProducer
from billstream.settings import Settings

# Faust-only variables, if ever read, must carry this prefix (none are: see `env={}`).
FAUST_ENV_PREFIX = "BILLSTREAM_FAUST_"

# Throughput knobs measured with bench/worker.py (see docs/processing-guarantees.md).
TUNING: dict[str, Any] = {
    "stream_buffer_maxsize": 8192,
    "broker_max_poll_records": 2000,
    "broker_commit_every": 10_000,
    "broker_commit_interval": 2.8,
    "producer_max_batch_size": 256 * 1024,
}


class BillstreamTransport(Transport):
    """Faust's aiokafka transport with crash-safe commits (producer.py, consumer.py) and direct
    delivery (direct.py): faust's documented extension point, its Consumer and Producer
    classes, instead of overriding the app's private `_new_consumer` and `_new_producer`."""

    Consumer = DirectConsumer
    Producer = LibrdkafkaProducer


class BillstreamFaustApp(faust.App):
    """faust.App on BillstreamTransport.

    `source_handlers` maps a topic to the coroutine that handles each of its records (the
    consumer reads it); `librdkafka_security` is what the librdkafka producer adds to its
    configuration; `fetch_batching` how long and for how much the broker may hold a fetch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_handlers: dict[str, Handler] = {}
        self.librdkafka_security: dict[str, str] = {}
        self.fetch_batching = FetchBatching()
        # What faust's own `_new_transport` builds for a kafka:// broker, with our classes.
        self.transport = BillstreamTransport(self.conf.broker_consumer, self)


def broker_urls(settings: Settings) -> list[str]:
    """`host:port,host:port` as Faust broker URLs."""
    hosts = [host.strip() for host in settings.kafka_bootstrap_servers.split(",") if host.strip()]
    return [f"kafka://{host}" for host in hosts]


def create_faust_app(settings: Settings, **overrides: Any) -> BillstreamFaustApp:
    """A Faust app with at-least-once processing; `overrides` are for tests and the benchmark."""
    # Faust creates only the last directory of its datadir: `var/worker` from an empty working
    # directory would stop the worker at start.
    Path(settings.worker_data_dir).parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": broker_urls(settings),
        # Faust hands these to its aiokafka consumer and producer (and topic creation).
        "broker_credentials": kafka_security.faust_credentials(settings),
        "store": settings.worker_store,
        "datadir": settings.worker_data_dir,
        "processing_guarantee": "at_least_once",
        "topic_partitions": settings.billstream_topic_partitions,
        "topic_replication_factor": settings.billstream_topic_replication,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.worker_session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.worker_session_timeout / 3),
        "producer_acks": -1,
        "producer_linger": settings.worker_linger_ms / 1000,
        # Whole webhook bodies up to STRIPE_WEBHOOK_MAX_BODY: fetched, and dead-lettered.
        "consumer_max_fetch_size": max(1024**2, record_bytes(settings.stripe_webhook_max_body)),
        "producer_max_request_size": record_bytes(settings.stripe_webhook_max_body),
        "web_port": settings.worker_web_port,
        "web_bind": settings.worker_web_host,
        "web_enabled": True,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_router_enabled": False,
        "web_tables_enabled": False,
        "web_metrics_enabled": False,
        "autodiscover": False,
        "env_prefix": FAUST_ENV_PREFIX,
        "env": {},
        **TUNING,
    }
    options.update(overrides)
    app = BillstreamFaustApp(settings.billstream_app_id, **options)
    app.librdkafka_security = kafka_security.librdkafka_config(settings)
    app.fetch_batching = FetchBatching(
        settings.worker_fetch_wait_ms, settings.worker_fetch_min_bytes
    )
    return app
