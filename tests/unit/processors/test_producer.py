"""The worker's producer: offsets are never committed past queued or failed records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaTimeoutError
from confluent_kafka import Producer
from faust.exceptions import ProducerSendError

from billstream.librdkafka import Poller
from billstream.processors.runtime.app import create_faust_app
from billstream.processors.runtime.producer import (
    DrainingProducer,
    LibrdkafkaProducer,
    librdkafka_config,
)
from tests.support.children import free_port
from tests.support.settings import SettingsFactory


@dataclass
class SlowBuffer:
    """Like Faust's buffer when a hand-over takes > 0.1 s: each flush() sends one message."""

    size: int
    should_stop: bool = False
    flushes: int = 0

    async def flush(self) -> None:
        self.flushes += 1
        if self.size:
            self.size -= 1


async def test_flush_fails_when_a_record_was_not_delivered(make_settings: SettingsFactory) -> None:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    assert isinstance(producer, DrainingProducer)
    producer.buffer = SlowBuffer(size=0)  # type: ignore[assignment]
    delivered, failed = asyncio.Future[object](), asyncio.Future[object]()
    for delivery in (delivered, failed):
        delivery.add_done_callback(producer.on_delivered)
    delivered.set_result(object())
    failed.set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)  # run the done callbacks

    # aiokafka's own flush would return normally here and offsets would be committed.
    with pytest.raises(ProducerSendError, match="not delivered"):
        await producer.flush()


def test_librdkafka_keeps_fausts_durability_and_batching_settings(
    make_settings: SettingsFactory,
) -> None:
    app = create_faust_app(
        make_settings(kafka_bootstrap_servers="k1:9092,k2:9093", worker_linger_ms=15)
    )

    config = librdkafka_config(app.conf)

    assert config["bootstrap.servers"] == "k1:9092,k2:9093"
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == 15  # WORKER_LINGER_MS
    assert config["batch.size"] == app.conf.producer_max_batch_size
    assert config["partitioner"] == "murmur2_random"  # the partitioner aiokafka and Java use


@pytest.fixture
async def unreachable(make_settings: SettingsFactory) -> AsyncIterator[LibrdkafkaProducer]:
    """The worker's producer with librdkafka pointed at a port no broker listens on: it gives up
    on each record after message.timeout.ms (0.3 s here)."""
    app = create_faust_app(make_settings(), producer_request_timeout=0.3)
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    assert isinstance(producer, LibrdkafkaProducer)
    producer._rdkafka = Producer(
        librdkafka_config(app.conf) | {"bootstrap.servers": f"127.0.0.1:{free_port()}"}
    )
    producer._poller = Poller(producer._rdkafka, app.loop)  # what on_start does
    try:
        yield producer
    finally:
        producer._rdkafka = None
        if producer._poller is not None:
            producer._poller.cancel()


async def test_a_produced_record_librdkafka_cannot_deliver_fails_the_flush(
    unreachable: LibrdkafkaProducer,
) -> None:
    delivered: list[tuple[int, int]] = []
    unreachable.on_delivery("t", lambda partition, offset: delivered.append((partition, offset)))
    await unreachable.produce("t", b"key", b"value", partition=1, headers=[("h", b"v")])

    with pytest.raises(ProducerSendError, match="not delivered"):
        await unreachable.flush()
    assert delivered == []  # a listener hears only of acknowledged records


@dataclass
class Report:
    """What librdkafka hands a delivery callback for an acknowledged record."""

    _topic: str
    _partition: int
    _offset: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


async def test_acknowledged_records_reach_their_topic_s_listener_only(
    make_settings: SettingsFactory,
) -> None:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    assert isinstance(producer, LibrdkafkaProducer)
    heard: list[tuple[int, int]] = []
    producer.on_delivery("changelog", lambda partition, offset: heard.append((partition, offset)))

    producer._report(None, Report("changelog", 2, 41))
    producer._report(None, Report("account-state", 0, 7))

    assert heard == [(2, 41)]
    await producer.flush()  # nothing failed
