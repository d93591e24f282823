"""The Kafka publisher: librdkafka (confluent-kafka), acks=all and idempotent, bridged to asyncio.

librdkafka batches, compresses and retries in its own C threads, so the event loop pays only
`produce()` (~6 µs) per webhook, where aiokafka builds, compresses and sends batches on the loop
thread (compared in bench/ingest.py). Delivery reports are served on the loop itself
(billstream/librdkafka.py): their callbacks resolve futures directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from billstream.ingest.publisher import PublishError, Record, RecordTooLarge
from billstream.kafka_security import describe, librdkafka_config
from billstream.librdkafka import Poller, drain
from billstream.limits import RECORD_HEADROOM_BYTES, record_bytes
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, TopicConfigError, contract_topics, ensure_topics

log = logging.getLogger(__name__)
rdkafka_log = logging.getLogger(f"{__name__}.librdkafka")

PROBE_INTERVAL = 1.0  # seconds between reachability probes while the broker is down
REFUSED_PROBE_INTERVAL = 30.0  # ... and while it refuses our credentials or TLS (no log flood)
# librdkafka's codes for "the broker answered but would not let us in"
REFUSED = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})
DRAIN_TIMEOUT = 10.0  # seconds `stop()` waits for in-flight records
# Errors that say the record is too large for the broker or topic: a 413, never a 503.
SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


def producer_config(settings: Settings) -> dict[str, Any]:
    """Durable (acks=all, idempotent) yet batched and compressed; fails fast while unreachable."""
    timeout_ms = math.ceil(settings.ingest_publish_timeout * 1000)
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": f"{settings.billstream_app_id}-ingest",
        "enable.idempotence": True,  # implies acks=all, retries, ordered in-flight requests
        "acks": "all",
        # Java's and aiokafka's partitioner: backfill (aiokafka) puts a customer on the same
        # partition as ingest, so one customer's events stay in one ordered stream.
        "partitioner": "murmur2_random",
        # librdkafka sends one request per partition batch: at a steady rate the linger, not
        # the rate, bounds the requests (≤ partitions / linger), hence the broker's CPU.
        "linger.ms": settings.ingest_linger_ms,
        "compression.type": "lz4",  # Stripe JSON compresses ~4x; cheap, off the loop thread
        # librdkafka refuses records over ~1 MB by default: carry every body ingest accepts.
        "message.max.bytes": record_bytes(settings.stripe_webhook_max_body),
        # Give up when the webhook is answered 503 anyway; Stripe retries it.
        "message.timeout.ms": max(timeout_ms, 1000),
        "queue.buffering.max.kbytes": 128 * 1024,  # bounds memory during an outage
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,  # back within a second of a broker restart
        "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
    } | librdkafka_config(settings)


class LibrdkafkaLog:
    """librdkafka's own log lines, dropped while `wanted()` is false.

    While the broker refuses us librdkafka logs every reconnect (about twice a second);
    `_on_error` says why in one line instead.
    """

    def __init__(self, wanted: Callable[[], bool]) -> None:
        self._wanted = wanted

    def log(self, level: int, message: str, *args: object) -> None:
        if self._wanted():
            rdkafka_log.log(level, message, *args)


class KafkaPublisher:
    """`Publisher` over librdkafka; `ready` follows the broker's reachability."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = producer_config(settings) | {
            "error_cb": self._on_error,
            "logger": LibrdkafkaLog(lambda: self._refused is None and self._last_fatal is None),
        }
        self._connected = False
        self._fatal = False
        self._refused: str | None = None  # why the broker refuses us, while it does
        self._last_fatal: str | None = None  # the fatal error logged, until a record is delivered
        self._producer: Producer | None = None
        self._poller: Poller | None = None
        self._supervisor: asyncio.Task[None] | None = None
        # Largest body the topic carries: lowered if the topic accepts less than configured.
        self._max_value = settings.stripe_webhook_max_body

    @property
    def ready(self) -> bool:
        return self._connected and not self._fatal

    async def start(self) -> None:
        self._open()
        self._supervisor = asyncio.create_task(self._supervise(), name="ingest-kafka-supervisor")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._close()

    def publish(self, record: Record) -> asyncio.Future[None]:
        producer = self._producer
        if producer is None or not self.ready:
            raise PublishError("broker not reachable")
        if len(record.value) > self._max_value:
            raise RecordTooLarge(f"larger than the topic accepts ({self._max_value} bytes)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        try:
            producer.produce(
                record.topic,
                record.value,
                record.key,
                headers=cast(list[tuple[str, str | bytes | None]], record.headers),
                on_delivery=functools.partial(self._delivered, future),
            )
        except BufferError:
            raise PublishError("local queue full") from None
        except KafkaException as error:
            raise _publish_error(error.args[0]) from None
        if self._poller is not None:
            self._poller.soon()
        return future

    def _delivered(
        self, future: asyncio.Future[None], error: KafkaError | None, _: Message
    ) -> None:
        """Delivery report, called by `poll` on the loop thread."""
        if future.done():  # the request already timed out
            return
        if error is None:
            future.set_result(None)
            self._connected = True
            self._last_fatal = None
        else:
            future.set_exception(_publish_error(error))

    def _open(self) -> None:
        self._fatal = False
        self._producer = Producer(self._config)
        # A fatal error surfaces from poll too: noted, and polling goes on.
        self._poller = Poller(self._producer, asyncio.get_running_loop(), self._on_error)
        self._poller.start()

    async def _close(self) -> None:
        """Deliver what is in flight (bounded by DRAIN_TIMEOUT), then drop the producer."""
        producer, self._producer = self._producer, None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if producer is not None:
            await drain(producer, DRAIN_TIMEOUT)

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (served by `poll`): note outages and fatal errors."""
        if error.code() in REFUSED:
            self._connected = False
            if self._refused is None:
                log.error(
                    "kafka refuses %s: %s; answering 503 until it accepts",
                    describe(self._settings),
                    error.str(),
                )
            self._refused = error.str()
        elif error.fatal():
            if error.str() != self._last_fatal:  # the same one again after a reopen: logged
                log.error("kafka producer fatal error, reopening it: %s", error.str())
            self._last_fatal = error.str()
            self._fatal = True
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self._connected:
                log.warning("kafka unreachable: answering 503 until it is back")
            self._connected = False
        else:
            log.info("kafka producer: %s", error.str())

    async def _supervise(self) -> None:
        """Probe while unreachable (this also creates the topic), reopen after a fatal error."""
        topic = self._settings.topic(STRIPE_EVENTS)
        specs = [spec for spec in contract_topics(self._settings) if spec.name == topic]
        while True:
            if self._fatal:
                await self._close()
                self._open()
            if not self._connected:
                try:
                    async with asyncio.timeout(max(self._settings.ingest_publish_timeout, 1.0)):
                        await ensure_topics(self._settings, specs)
                except TopicConfigError as error:  # reachable, but carries smaller records
                    self._max_value = error.accepts - RECORD_HEADROOM_BYTES
                    log.error("%s; until then larger bodies are answered 413", error)
                    self._connected = True
                except Exception as error:  # any failure means "not reachable yet"
                    log.debug("kafka probe failed: %r", error)
                else:
                    log.info("kafka reachable at %s", self._settings.kafka_bootstrap_servers)
                    self._connected = True
                    self._refused = None
            await asyncio.sleep(PROBE_INTERVAL if self._refused is None else REFUSED_PROBE_INTERVAL)


def _publish_error(error: KafkaError) -> PublishError:
    if error.code() in SIZE_ERRORS:
        return RecordTooLarge(error.str())
    return PublishError(error.str())
