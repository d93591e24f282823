"""The Kafka publisher: librdkafka (confluent-kafka), acks=all and idempotent, bridged to asyncio.

librdkafka batches, compresses and retries in its own C threads, so the event loop pays only
`produce()` (a few µs) per webhook; aiokafka does all of that on the loop thread and costs ~3x
more per record here (bench/ingest_producers.py). Delivery reports are served by one pump thread
and handed to the loop in batches, one wake-up per batch rather than per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from billstream.ingest.publisher import PublishError, Record
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, contract_topics, ensure_topics

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0  # seconds between reachability probes while the broker is down
DRAIN_TIMEOUT = 10.0  # seconds `stop()` waits for in-flight records

Resolved = list[tuple["asyncio.Future[None]", KafkaError | None]]


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
        "linger.ms": 5,  # fewer, fuller batches for broker and loop; +5 ms at worst
        "compression.type": "lz4",  # Stripe JSON compresses ~4x; cheap, off the loop thread
        # Give up when the webhook is answered 503 anyway; Stripe retries it.
        "message.timeout.ms": max(timeout_ms, 1000),
        "queue.buffering.max.kbytes": 128 * 1024,  # bounds memory during an outage
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,  # back within a second of a broker restart
        "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
    }


class _DeliveryPump(threading.Thread):
    """Serves one producer's delivery reports and resolves their futures on the event loop."""

    def __init__(self, producer: Producer, loop: asyncio.AbstractEventLoop, on_ack: Any) -> None:
        super().__init__(name="ingest-delivery-pump", daemon=True)
        self._producer = producer
        self.loop = loop
        self._on_ack = on_ack
        self._stopping = threading.Event()
        self._resolved: Resolved = []  # appended and swapped only by this thread

    def collect(self, future: asyncio.Future[None], error: KafkaError | None, _: Message) -> None:
        self._resolved.append((future, error))

    def run(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)
            self._hand_over()
        self._producer.flush(DRAIN_TIMEOUT)
        self._hand_over()

    def close(self) -> None:
        """Stop after draining in-flight records (blocking: call it off the loop)."""
        self._stopping.set()
        self.join()

    def _hand_over(self) -> None:
        if not self._resolved:
            return
        batch, self._resolved = self._resolved, []
        with contextlib.suppress(RuntimeError):  # loop already closed at interpreter exit
            self.loop.call_soon_threadsafe(self._on_ack, batch)


class KafkaPublisher:
    """`Publisher` over librdkafka; `ready` follows the broker's reachability."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._config = producer_config(settings) | {"error_cb": self._on_error, "logger": log}
        self._connected = False
        self._fatal = False
        self._producer: Producer | None = None
        self._pump: _DeliveryPump | None = None
        self._supervisor: asyncio.Task[None] | None = None

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
        if not self.ready or self._producer is None or self._pump is None:
            raise PublishError("broker not reachable")
        future: asyncio.Future[None] = self._pump.loop.create_future()
        try:
            self._producer.produce(
                record.topic,
                record.value,
                record.key,
                headers=cast(list[tuple[str, str | bytes | None]], record.headers),
                on_delivery=functools.partial(self._pump.collect, future),
            )
        except BufferError:
            raise PublishError("local queue full") from None
        except KafkaException as error:
            raise PublishError(str(error)) from None
        return future

    def _open(self) -> None:
        self._fatal = False
        self._producer = Producer(self._config)
        self._pump = _DeliveryPump(self._producer, asyncio.get_running_loop(), self._resolve)
        self._pump.start()

    async def _close(self) -> None:
        pump, self._pump, self._producer = self._pump, None, None
        if pump is not None:
            await asyncio.to_thread(pump.close)

    def _resolve(self, batch: Resolved) -> None:
        for future, error in batch:
            if future.done():  # the request already timed out
                continue
            if error is None:
                future.set_result(None)
                self._connected = True
            else:
                future.set_exception(PublishError(error.str()))

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error callback (pump thread): note outages and fatal errors."""
        if error.fatal():
            log.error("kafka producer fatal error, reopening it: %s", error.str())
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
                except Exception as error:  # any failure means "not reachable yet"
                    log.debug("kafka probe failed: %r", error)
                else:
                    log.info("kafka reachable at %s", self._settings.kafka_bootstrap_servers)
                    self._connected = True
            await asyncio.sleep(PROBE_INTERVAL)
