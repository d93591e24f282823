"""Batch handling: decode, one transaction, commit after it; skip bad records, rewind on failure.

The Kafka client is a recording stand-in here; tests/integration/test_api.py uses the real broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiokafka import TopicPartition
from sqlalchemy import event

from billstream.api.consumer import StateConsumer
from billstream.api.metrics import ApiMetrics
from billstream.api.store import Store
from tests.support.account_state import record, state_value
from tests.support.settings import SettingsFactory

TP0 = TopicPartition("billing.account-state", 0)
TP1 = TopicPartition("billing.account-state", 1)


class RecordingKafka:
    """Records what the consumer asks of the Kafka client."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    def highwater(self, tp: TopicPartition) -> int:
        return 10


@pytest.fixture
def consumer(make_settings: SettingsFactory, sqlite_store: Store) -> Iterator[StateConsumer]:
    with ThreadPoolExecutor(1) as executor:
        consumer = StateConsumer(make_settings(), sqlite_store, ApiMetrics.create(), executor)
        consumer.kafka = RecordingKafka()  # type: ignore[assignment,unused-ignore]
        yield consumer


def count(consumer: StateConsumer, result: str) -> float:
    value = consumer.metrics.registry.get_sample_value(
        "billstream_api_state_messages_total", {"result": result}
    )
    return value or 0.0


def kafka(consumer: StateConsumer) -> RecordingKafka:
    assert isinstance(consumer.kafka, RecordingKafka)
    return consumer.kafka


def test_group_and_topic_follow_the_settings(consumer: StateConsumer) -> None:
    assert consumer.group_id.endswith("-api")
    assert consumer.group_id.startswith("billstream-test-")
    assert consumer.topic.endswith("billing.account-state")
    assert consumer.topic.startswith("t")


async def test_batch_is_stored_then_offsets_committed(consumer: StateConsumer) -> None:
    batch = {
        TP0: [record(state_value("cus_1", 1), offset=4), record(state_value("cus_1", 2), offset=5)],
        TP1: [record(state_value("cus_2", 1), offset=0)],
    }
    assert await consumer.handle(batch)
    assert kafka(consumer).commits == [{TP0: 6, TP1: 1}]
    account = consumer.store.get_account("cus_1")
    assert account is not None
    assert account["version"] == 2
    assert count(consumer, "applied") == 3


async def test_redelivery_changes_nothing_and_still_commits(consumer: StateConsumer) -> None:
    batch = {TP0: [record(state_value("cus_1", 1), offset=0)]}
    await consumer.handle(batch)
    assert await consumer.handle(batch)
    assert count(consumer, "stale") == 1
    assert len(kafka(consumer).commits) == 2


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b"not json", b"cus_1"),
        (b'{"customer_id": "cus_1"}', b"cus_1"),
        (b'{"customer_id": "cus_1", "plan": "PRO", "payment_state": "broke", "version": 1}', None),
        (b'{"customer_id": "cus_1", "plan": "PRO", "payment_state": "ok", "version": "1"}', None),
        (b'{"customer_id": "cus_1", "plan": "PRO", "payment_state": "ok", "version": 1}', b"cus_9"),
        (
            b'{"customer_id": "cus_1", "plan": "P\\u0000", "payment_state": "ok", "version": 1}',
            None,
        ),
        (b"[]", None),
    ],
)
async def test_malformed_record_is_logged_counted_and_skipped(
    consumer: StateConsumer, raw: bytes, key: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    batch = {
        TP1: [
            record(raw, key=key, offset=7, partition=1),
            record(state_value("cus_2", 1), offset=8),
        ]
    }
    with caplog.at_level(logging.WARNING, logger="billstream.api.consumer"):
        assert await consumer.handle(batch)
    assert count(consumer, "malformed") == 1
    assert consumer.store.get_account("cus_1") is None
    assert consumer.store.get_account("cus_2") is not None
    assert kafka(consumer).commits == [{TP1: 9}]
    (message,) = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert "[1]@7" in message.getMessage()
    assert (message.__dict__["partition"], message.__dict__["offset"]) == (1, 7)


async def test_tombstone_keeps_the_last_state(consumer: StateConsumer) -> None:
    await consumer.handle({TP0: [record(state_value("cus_1", 1), offset=0)]})
    assert await consumer.handle({TP0: [record(None, key=b"cus_1", offset=1)]})
    assert count(consumer, "tombstone") == 1
    assert consumer.store.get_account("cus_1") is not None
    assert kafka(consumer).commits[-1] == {TP0: 2}


async def test_unknown_fields_are_ignored(consumer: StateConsumer) -> None:
    value = state_value("cus_1", 1, future_field={"x": 1})
    del value["updated_by_event_type"]
    assert await consumer.handle({TP0: [record(value, offset=0)]})
    (transition,) = consumer.store.get_transitions("cus_1") or []
    assert transition["event_type"] is None


def fill_disk(store: Store) -> None:
    """Make every new connection hit SQLite's 'database or disk is full' on the next write."""
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _tiny(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute("PRAGMA max_page_count=1")


async def test_full_disk_rewinds_the_batch_and_commits_nothing(
    consumer: StateConsumer, caplog: pytest.LogCaptureFixture
) -> None:
    many = [record(state_value(f"cus_{n}", 1, plan="X" * 200), offset=n) for n in range(50)]
    fill_disk(consumer.store)
    with caplog.at_level(logging.ERROR, logger="billstream.api.consumer"):
        assert not await consumer.handle({TP0: many[:10], TP1: many[10:]})
    assert kafka(consumer).commits == []
    assert kafka(consumer).seeks == [(TP0, 0), (TP1, 10)]
    assert consumer.write_error is not None
    assert "full" in consumer.write_error
    assert "offsets not committed" in caplog.text
    assert consumer.metrics.registry.get_sample_value("billstream_api_write_errors_total") == 1


async def test_write_error_clears_once_a_batch_is_stored(consumer: StateConsumer) -> None:
    consumer.write_error = "OperationalError: disk I/O error"
    assert await consumer.handle({TP0: [record(state_value("cus_1", 1), offset=0)]})
    assert consumer.write_error is None


async def test_data_the_database_refuses_is_isolated(
    consumer: StateConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import DataError

    real_apply = consumer.store.apply

    def refuse_cus_bad(states: Any, episodes: Any = ()) -> Any:
        if any(state.customer_id == "cus_bad" for state in states):
            raise DataError("INSERT", {}, ValueError("value out of range"))
        return real_apply(states, episodes)

    monkeypatch.setattr(consumer.store, "apply", refuse_cus_bad)
    batch = {
        TP0: [
            record(state_value(c, 1), offset=n) for n, c in enumerate(["cus_a", "cus_bad", "cus_b"])
        ]
    }
    assert await consumer.handle(batch)
    assert count(consumer, "rejected") == 1
    assert count(consumer, "applied") == 2
    assert kafka(consumer).commits == [{TP0: 3}]


def test_lag_is_highwater_minus_next_offset(consumer: StateConsumer) -> None:
    consumer._positions = {TP0: 7, TP1: 10}
    consumer._update_lag()
    lag = consumer.metrics.registry.get_sample_value("billstream_api_consumer_lag_messages")
    assert lag == 3


async def test_a_retried_batch_counts_its_malformed_records_once(
    consumer: StateConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    real_apply = consumer.store.apply
    calls: list[int] = []

    def fail_first(states: Any, episodes: Any = ()) -> Any:
        calls.append(len(states))
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real_apply(states, episodes)

    monkeypatch.setattr(consumer.store, "apply", fail_first)
    batch = {
        TP0: [record(b"garbage", key=b"cus_1", offset=0), record(state_value("cus_2", 1), offset=1)]
    }
    assert not await consumer.handle(batch)
    assert count(consumer, "malformed") == 0
    assert await consumer.handle(batch)
    assert count(consumer, "malformed") == 1
    assert count(consumer, "applied") == 1
    assert kafka(consumer).commits == [{TP0: 2}]


async def test_a_record_beyond_64_bits_is_quarantined_and_the_rest_flow(
    consumer: StateConsumer,
) -> None:
    batch = {
        TP0: [
            record(state_value("cus_big", 1, current_period_end=2**63), offset=0),
            record(state_value("cus_next", 1), offset=1),
        ]
    }
    assert await consumer.handle(batch)
    assert consumer.store.get_account("cus_next") is not None
    assert consumer.store.get_account("cus_big") is None
    (kept,) = consumer.store.quarantined()
    assert (kept["topic"], kept["partition"], kept["offset"]) == (TP0.topic, 0, 0)
    assert kept["key"] == b"cus_big"
    assert b"9223372036854775808" in kept["value"]
    assert "current_period_end" in kept["reason"]
    assert kafka(consumer).commits == [{TP0: 2}]


async def test_stripes_longest_metadata_value_is_served_and_longer_is_quarantined(
    consumer: StateConsumer,
) -> None:
    batch = {
        TP0: [
            record(state_value("cus_500", 1, pending_plan="p" * 500), offset=0),
            record(state_value("cus_501", 1, pending_plan="p" * 501), offset=1),
        ]
    }
    assert await consumer.handle(batch)
    served = consumer.store.get_account("cus_500")
    assert served is not None
    assert served["pending_plan"] == "p" * 500
    assert [kept["key"] for kept in consumer.store.quarantined()] == [b"cus_501"]
    assert count(consumer, "malformed") == 1


async def test_a_value_the_driver_cannot_bind_is_quarantined_not_retried_forever(
    consumer: StateConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = consumer.store.apply

    def overflow_on_cus_bad(states: Any, episodes: Any = ()) -> Any:
        if any(state.customer_id == "cus_bad" for state in states):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real_apply(states, episodes)

    monkeypatch.setattr(consumer.store, "apply", overflow_on_cus_bad)
    batch = {TP0: [record(state_value(c, 1), offset=n) for n, c in enumerate(["cus_bad", "cus_a"])]}
    assert await consumer.handle(batch)
    assert consumer.store.get_account("cus_a") is not None
    assert [kept["key"] for kept in consumer.store.quarantined()] == [b"cus_bad"]
    assert count(consumer, "rejected") == 1
    assert await consumer.handle(batch)  # re-read after a crash: quarantined once
    assert len(consumer.store.quarantined()) == 1


async def test_the_broker_may_hold_a_fetch_as_configured(
    make_settings: SettingsFactory, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}

    class CapturedKafka(RecordingKafka):
        def __init__(self, *topics: str, **options: Any) -> None:
            super().__init__()
            built.update(options)

        async def start(self) -> None:
            pass

    monkeypatch.setattr("billstream.api.consumer.AIOKafkaConsumer", CapturedKafka)
    settings = make_settings(api_fetch_wait_ms=30, api_fetch_min_bytes=4096)
    with ThreadPoolExecutor(1) as executor:
        await StateConsumer(settings, sqlite_store, ApiMetrics.create(), executor).start()

    assert (built["fetch_max_wait_ms"], built["fetch_min_bytes"]) == (30, 4096)
