"""The publisher interface over aiokafka, only to compare it with librdkafka in the benchmark."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from billstream.ingest.publisher import PublishError, Record
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, contract_topics, ensure_topics


class AiokafkaPublisher:
    """Same durability (acks=all, idempotent) and tuning as the librdkafka publisher."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._ready = False
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self) -> None:
        topic = self._settings.topic(STRIPE_EVENTS)
        await ensure_topics(
            self._settings, [s for s in contract_topics(self._settings) if s.name == topic]
        )
        self._producer = AIOKafkaProducer(  # needs the running loop
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            compression_type="lz4",
            max_batch_size=1024 * 1024,
        )
        await self._producer.start()
        self._ready = True

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    def publish(self, record: Record) -> asyncio.Future[None]:
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._send(record, acknowledged))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return acknowledged

    async def _send(self, record: Record, acknowledged: asyncio.Future[None]) -> None:
        try:
            if self._producer is None:
                raise PublishError("not started")
            delivery = await self._producer.send(
                record.topic, record.value, key=record.key, headers=record.headers
            )
            await delivery
        except Exception as error:
            if not acknowledged.done():
                acknowledged.set_exception(PublishError(repr(error)))
        else:
            if not acknowledged.done():
                acknowledged.set_result(None)
