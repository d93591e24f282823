"""The librdkafka publisher's durability settings, and its behaviour with no broker to talk to."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from billstream.ingest.kafka_publisher import KafkaPublisher, LibrdkafkaLog, producer_config
from billstream.ingest.publisher import PublishError, Record
from tests.support.settings import SettingsFactory


def test_producer_is_durable_and_partitions_like_java_clients(
    make_settings: SettingsFactory,
) -> None:
    config = producer_config(make_settings(ingest_publish_timeout=2.5, ingest_linger_ms=7))
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["partitioner"] == "murmur2_random"  # what backfill's aiokafka uses
    assert config["message.timeout.ms"] == 2500  # librdkafka gives up when we answer 503
    assert config["linger.ms"] == 7  # INGEST_LINGER_MS


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here once the socket is closed


async def test_without_a_broker_it_is_not_ready_and_refuses_at_once(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{_closed_port()}")
    publisher = KafkaPublisher(settings)
    await publisher.start()  # does not wait for the broker
    try:
        await asyncio.sleep(0.3)  # let the first probe fail
        assert not publisher.ready
        with pytest.raises(PublishError, match="not reachable"):
            publisher.publish(Record("t", b"k", b"{}", []))
    finally:
        await asyncio.wait_for(publisher.stop(), timeout=30)


def test_librdkafka_lines_are_dropped_while_the_broker_refuses_us(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = True
    rdkafka = LibrdkafkaLog(lambda: not refused)
    with caplog.at_level(logging.INFO):
        rdkafka.log(logging.ERROR, "%s [%s] %s", "FAIL", "producer-1", "SASL authentication error")
        refused = False
        rdkafka.log(logging.ERROR, "%s [%s] %s", "FAIL", "producer-1", "connection refused")
    assert [record.getMessage() for record in caplog.records] == [
        "FAIL [producer-1] connection refused"
    ]
