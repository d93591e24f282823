"""Readers for verify: a topic from its beginning to the end offsets seen at start, and the API.

No consumer group: nothing is committed, and the running services never see these reads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.routing import account_key
from billstream.settings import Settings
from billstream.topics import MissingTopic, partition_numbers

API_PAGE_SIZE = 500


class SourceError(Exception):
    """A source verify needs is missing or unreadable (topic, API)."""


@dataclass
class TopicRead:
    """Records of one topic up to its end offsets at start; `truncated` partitions lost history."""

    topic: str
    records: int = 0
    truncated: dict[int, int] = field(default_factory=dict)  # partition -> log start offset


async def topic_partitions(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of `topic`; SourceError when it does not exist."""
    try:
        return await partition_numbers(settings, topic)
    except MissingTopic as error:
        raise SourceError(str(error)) from None


async def read_topic(
    settings: Settings, topic: str, read: TopicRead, idle_timeout: float = 30.0
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record from the beginning to the end offsets at start, in partition order."""
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=record_bytes(settings.stripe_webhook_max_body),
    )
    assigned = [TopicPartition(topic, p) for p in await topic_partitions(settings, topic)]
    await consumer.start()
    try:
        consumer.assign(assigned)
        begin = await consumer.beginning_offsets(assigned)
        end = await consumer.end_offsets(assigned)
        read.truncated = {tp.partition: begin[tp] for tp in assigned if begin[tp] > 0}
        await consumer.seek_to_beginning(*assigned)
        remaining = {tp for tp in assigned if end[tp] > begin[tp]}
        last_progress = time.monotonic()
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < end[tp]:
                        read.records += 1
                        yield record
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout:
                raise SourceError(f"{topic}: no progress for {idle_timeout:.0f}s")
    finally:
        await consumer.stop()


async def latest_per_key(settings: Settings, topic: str) -> tuple[dict[str, Any], TopicRead]:
    """A compacted topic as its consumers see it: the last value per key, tombstones removed."""
    read = TopicRead(topic)
    latest: dict[str, Any] = {}
    async for record in read_topic(settings, topic, read):
        key = (record.key or b"").decode(errors="replace")
        if record.value is None:
            latest.pop(key, None)
        else:
            try:
                latest[key] = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                latest[key] = {"<unparseable>": record.value.decode(errors="replace")}
    return latest, read


async def api_accounts(
    api_url: str, token: str | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Every account the API serves, by walking GET /accounts pages (as bearer `token`), by
    account key (a connected account's customer is `acct_…/cus_…`, as the table keys it)."""
    accounts: dict[str, Any] = {}
    url = f"{api_url.rstrip('/')}/accounts"
    params: dict[str, str | int] = {"limit": API_PAGE_SIZE}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, headers=headers) as session:
            while True:
                async with session.get(url, params=params) as response:
                    if response.status != 200:
                        text = (await response.text())[:200]
                        raise SourceError(f"GET {url}: HTTP {response.status}: {text}")
                    page = orjson.loads(await response.read())
                for item in page["items"]:
                    key = account_key(str(item["customer_id"]), item.get("stripe_account"))
                    accounts[key] = item
                if not page.get("next"):
                    return accounts
                params["after"] = str(page["next"])
    except (aiohttp.ClientError, TimeoutError) as error:
        raise SourceError(f"GET {url}: {error!r}") from None
