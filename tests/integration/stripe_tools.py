"""Broker helpers for the Stripe API tools' integration tests."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from billstream.settings import Settings
from billstream.verify.readers import topic_partitions


async def record_count(settings: Settings, topic: str) -> int:
    """Records in `topic` (end minus beginning offsets, all partitions)."""
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(settings, topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
        begin = await consumer.beginning_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        await consumer.stop()
