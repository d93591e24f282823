"""A Faust producer that never lets offsets be committed ahead of unsent or failed records.

Before committing offsets Faust's consumer calls `producer.flush()`. In faust-streaming 0.15.3
aiokafka's flush waits for batches without raising when one failed, so offsets could be
committed past state changes that never reached Kafka. This flush waits for librdkafka's
delivery report of every record and fails if any delivery failed, so the commit fails instead
and the records are processed again. (Faust's ProducerBuffer, whose flush gives up after a
0.1 s hand-over, carries `send_soon` records such as Faust's own table writes; the worker sends
none: the handler and TableWriter call `produce`.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from faust.exceptions import ProducerSendError
from faust.transport.drivers.aiokafka import Producer

from billstream.librdkafka import Poller, drain

log = logging.getLogger(__name__)


class DrainingProducer(Producer):
    """aiokafka-backed Faust producer with a complete, failure-reporting `flush`."""

    _delivery_error: BaseException | None = None

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        delivery = await super().send(*args, **kwargs)
        if isinstance(delivery, asyncio.Future):
            delivery.add_done_callback(self.on_delivered)
        return delivery

    def on_delivered(self, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self._delivery_error = delivery.exception()

    async def flush(self) -> None:
        await super().flush()
        if self._delivery_error is not None:
            raise ProducerSendError(f"a record was not delivered: {self._delivery_error!r}")


# librdkafka settings for the worker's records (changelog, account state, dead letters).
QUEUE_FULL_WAIT = 0.005
DRAIN_MARGIN = 5.0  # seconds to wait for room when librdkafka's local queue is full
# Seconds between delivery-report polls while records are in flight. Nothing waits on a report
# but a commit, whose flush drains them, and the changelog offset written once a second; a
# poll every millisecond was a thousand wake-ups a second at any steady rate.
DELIVERY_POLL = 0.02


def librdkafka_config(conf: Any) -> dict[str, Any]:
    """Faust's producer settings (`app.conf`) as librdkafka configuration."""
    return {
        "bootstrap.servers": ",".join(f"{url.host}:{url.port or 9092}" for url in conf.broker),
        "client.id": f"{conf.id}-worker",
        "enable.idempotence": True,  # acks=all, ordered retries without duplicates
        "acks": "all",
        "partitioner": "murmur2_random",  # Java's and aiokafka's: same partition for a key
        "linger.ms": round(conf.producer_linger * 1000),  # WORKER_LINGER_MS
        "batch.size": conf.producer_max_batch_size,
        "compression.type": "lz4",
        "message.max.bytes": conf.producer_max_request_size,  # a dead letter is a whole webhook
        "message.timeout.ms": round(conf.producer_request_timeout * 1000),
        "queue.buffering.max.kbytes": 256 * 1024,
    }


DeliveryListener = Callable[[int, int], None]  # (partition, offset) of an acknowledged record


class LibrdkafkaProducer(DrainingProducer):
    """Faust's producer with records sent by librdkafka (confluent-kafka) instead of aiokafka.

    aiokafka builds, compresses and sends batches on the event-loop thread: per record it cost
    the worker more than the reducer did (bench/worker.py). librdkafka does that in its own
    threads, on the second core; the loop pays `produce()` and a delivery report. Topic creation
    and metadata stay with Faust's aiokafka producer. Delivery reports are served by `poll(0)`
    on the loop thread (billstream/librdkafka.py).

    The worker's records go through `produce`, which makes no future: a future, its
    RecordMetadata and its callbacks cost more than librdkafka's produce() itself (~6 µs of
    the loop per record). A failure still fails the next flush, which precedes every commit.
    """

    _rdkafka: Any = None
    _poller: Poller | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listeners: dict[str, DeliveryListener] = {}

    def on_delivery(self, topic: str, listener: DeliveryListener) -> None:
        """Call `listener(partition, offset)` for each record of `topic` the broker acknowledged."""
        self._listeners[topic] = listener

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue a record without a future; the next `flush` waits for it and reports failure."""
        if self._rdkafka is None:  # not started (unit tests): Faust's path, with a future
            delivery = await self.send(topic, key, value, partition, None, headers)
            delivery.add_done_callback(functools.partial(self._listen_to_future, topic))
            return
        args = (topic, value, key, -1 if partition is None else partition, self._report)
        await self._enqueue(args, {"headers": headers} if headers else {})

    async def _enqueue(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        while True:
            try:
                self._rdkafka.produce(*args, **options)
                break
            except BufferError:  # local queue full: let librdkafka deliver, then try again
                self._rdkafka.poll(0)
                await asyncio.sleep(QUEUE_FULL_WAIT)
        if self._poller is not None:
            self._poller.soon()

    def _report(self, error: Any, message: Any) -> None:
        if error is not None:
            self._delivery_error = ProducerSendError(f"record not delivered: {error.str()}")
            return
        if self._listeners:
            listener = self._listeners.get(message.topic())
            if listener is not None:
                listener(message.partition(), message.offset())

    def _listen_to_future(self, topic: str, delivery: asyncio.Future[Any]) -> None:
        listener = self._listeners.get(topic)
        if listener is not None and not delivery.cancelled() and delivery.exception() is None:
            metadata = delivery.result()
            listener(metadata.partition, metadata.offset)

    async def on_start(self) -> None:
        await super().on_start()
        from confluent_kafka import Producer as RdProducer  # the worker's only librdkafka use

        # kafka_security.librdkafka_config(settings), set by create_faust_app: the same
        # security settings as Faust's aiokafka consumer and producer.
        security = getattr(self.app, "librdkafka_security", {})
        self._rdkafka = RdProducer(librdkafka_config(self.app.conf) | security | {"logger": log})
        self._poller = Poller(self._rdkafka, self.loop, busy=DELIVERY_POLL)
        self._poller.start()

    async def on_stop(self) -> None:
        if self._rdkafka is not None:
            try:
                await self._drain(self.app.conf.broker_commit_interval * 4)
            finally:
                if self._poller is not None:
                    self._poller.cancel()
                self._rdkafka = None
        await super().on_stop()

    async def _drain(self, timeout: float) -> None:
        undelivered = await drain(self._rdkafka, timeout)
        if undelivered:
            raise ProducerSendError(f"{undelivered} records still undelivered")

    async def flush(self) -> None:
        await super().flush()  # aiokafka's (topic creation, metadata: no records of ours)
        if self._rdkafka is not None:
            # librdkafka reports every record by message.timeout.ms: wait a little longer.
            await self._drain(self.app.conf.producer_request_timeout + DRAIN_MARGIN)
        if self._delivery_error is not None:
            raise ProducerSendError(f"a record was not delivered: {self._delivery_error!r}")
