"""Helpers to talk to the real test broker with aiokafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


async def broker_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a metadata request gets an answer within `timeout` seconds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.describe_cluster(), timeout)
        return True
    except Exception:
        return False
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
) -> None:
    """Send (key, value, headers) records with acks=all and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `count` records from the beginning of `topic`, failing after `timeout` seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {len(records)} of {count} records from {topic}")
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000))
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records
