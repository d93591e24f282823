"""The real broker accepts acks=all writes and serves them back, and topics get their configs."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, ensure_topics
from tests.integration.kafka import consume, produce
from tests.support.settings import SettingsFactory


async def test_round_trip_with_acks_all(kafka_bootstrap: str, unique_id: str) -> None:
    topic = f"roundtrip.{unique_id}"
    records = [
        (
            f"cus_{i % 3}".encode(),
            f'{{"n": {i}}}'.encode(),
            [("stripe-event-id", f"evt_{i}".encode())],
        )
        for i in range(20)
    ]
    await produce(kafka_bootstrap, topic, records)
    received = await consume(kafka_bootstrap, topic, len(records))
    assert sorted(r.value for r in received) == sorted(value for _, value, _ in records)
    by_key: dict[bytes, list[bytes]] = {}
    for record in received:
        assert record.key is not None
        by_key.setdefault(record.key, []).append(record.value)
    # one key, one partition: per-key order is the send order
    for key, values in by_key.items():
        assert values == [value for k, value, _ in records if k == key]


async def test_contract_topics_are_created_with_their_configs(
    kafka_bootstrap: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await ensure_topics(settings)
    await ensure_topics(settings)  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        assert {settings.topic(STRIPE_EVENTS), settings.topic(ACCOUNT_STATE)} <= topics
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic(ACCOUNT_STATE))]
        )
        configs = {name: value for name, value, *_ in described.resources[0][4]}
        assert configs["cleanup.policy"] == "compact"
    finally:
        await admin.close()
