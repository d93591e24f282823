"""The publisher interface over aiokafka, only to compare it with librdkafka in the benchmark."""

from __future__ import annotations

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

    async def publish(self, record: Record) -> None:
        if self._producer is None:
            raise PublishError("not started")
        try:
            delivery = await self._producer.send(
                record.topic, record.value, key=record.key, headers=record.headers
            )
            await delivery
        except Exception as error:
            raise PublishError(repr(error)) from None
