"""The worker's consumer: commits never skip an unprocessed record, and stuck partitions refetch.

Each case is a state Faust 0.15.3's own bookkeeping handles unsafely (see consumer.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from faust.types.tuples import Message

from billstream.processors.runtime.app import create_faust_app
from billstream.processors.runtime.consumer import STUCK_AFTER, GuardedConsumer
from billstream.topics import STRIPE_EVENTS
from tests.support.settings import SettingsFactory


@pytest.fixture
async def consumer(make_settings: SettingsFactory) -> GuardedConsumer:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    built = app.consumer
    assert isinstance(built, GuardedConsumer)
    return built


def tp_of(consumer: GuardedConsumer) -> TP:
    return TP(STRIPE_EVENTS, 0)


def acked(consumer: GuardedConsumer, tp: TP, committed: int | None, offsets: list[int]) -> None:
    consumer._committed_offset[tp] = committed
    consumer._acked[tp] = list(offsets)
    consumer._acked_index[tp] = set(offsets)


def test_a_single_unprocessed_head_offset_is_not_committed_over(consumer: GuardedConsumer) -> None:
    tp = tp_of(consumer)
    acked(consumer, tp, committed=100, offsets=[101, 102])  # 100 never processed

    assert consumer._new_offset(tp) is None  # Faust 0.15.3 returns 103 here (faust #606)


def test_a_contiguous_run_from_the_committed_offset_is_committed(consumer: GuardedConsumer) -> None:
    tp = tp_of(consumer)
    acked(consumer, tp, committed=100, offsets=[100, 101, 103])

    assert consumer._new_offset(tp) == 102


def test_offset_zero_is_checked_like_any_other(consumer: GuardedConsumer) -> None:
    tp = tp_of(consumer)
    acked(consumer, tp, committed=0, offsets=[1, 2])

    assert consumer._new_offset(tp) is None


def test_a_recorded_gap_in_the_log_is_not_a_missing_record(consumer: GuardedConsumer) -> None:
    tp = tp_of(consumer)
    acked(consumer, tp, committed=100, offsets=[102, 103])
    consumer._gap[tp].addi(100, 102)  # e.g. a compacted range: no records at 100 and 101

    assert consumer._new_offset(tp) == 104


def message(consumer: GuardedConsumer, tp: TP, offset: int, generation: int) -> Any:
    return Message(
        tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None, tp=tp,
        generation_id=generation,
    )  # fmt: skip


def test_an_ack_from_before_the_last_rebalance_is_ignored(
    consumer: GuardedConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp = tp_of(consumer)
    monkeypatch.setattr(consumer.app.topics, "acks_enabled_for", lambda topic: True)
    acked(consumer, tp, committed=100, offsets=[])
    consumer.app.consumer_generation_id = 5

    assert consumer.ack(message(consumer, tp, 100, generation=4)) is False
    assert consumer.ack(message(consumer, tp, 100, generation=5)) is True
    assert consumer._acked[tp] == [100]


async def test_a_head_gap_that_outlives_the_grace_period_refetches_the_partition(
    consumer: GuardedConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tp = tp_of(consumer)
    seeks: list[tuple[TP, int]] = []

    async def seek(partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer, "seek", seek)
    acked(consumer, tp, committed=100, offsets=[103, 104])
    assert consumer._new_offset(tp) is None
    _, since = consumer._gap_since[tp]

    assert await consumer.refetch_stuck(since + STUCK_AFTER / 2) == []
    assert await consumer.refetch_stuck(since + STUCK_AFTER + 1) == [tp]
    assert seeks == [(tp, 100)]
    assert await consumer.refetch_stuck(since + 3 * STUCK_AFTER) == []  # once per gap


async def test_a_gap_closed_by_processing_is_forgotten(consumer: GuardedConsumer) -> None:
    tp = tp_of(consumer)
    acked(consumer, tp, committed=100, offsets=[101])
    assert consumer._new_offset(tp) is None
    acked(consumer, tp, committed=100, offsets=[100, 101])

    assert consumer._new_offset(tp) == 102
    assert tp not in consumer._gap_since


async def test_the_broker_holds_a_fetch_as_configured_not_faust_s_fixed_1500_ms(
    make_settings: SettingsFactory,
) -> None:
    app = create_faust_app(make_settings(worker_fetch_wait_ms=40, worker_fetch_min_bytes=65536))
    app.loop = asyncio.get_running_loop()
    consumer = app.consumer
    assert isinstance(consumer, GuardedConsumer)
    transport = consumer.transport  # the aiokafka driver's Transport, typed as TransportT by Faust
    aiokafka_consumer = consumer._thread._create_worker_consumer(transport)  # type: ignore[arg-type]
    try:
        # aiokafka's start() builds its fetcher from these attributes.
        assert aiokafka_consumer._fetch_max_wait_ms == 40
        assert aiokafka_consumer._fetch_min_bytes == 65536
    finally:
        await aiokafka_consumer.stop()


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def fetched(offsets: range) -> list[Any]:
    return [_Record(offset) for offset in offsets]


@pytest.fixture
def seeks(consumer: GuardedConsumer, monkeypatch: pytest.MonkeyPatch) -> list[tuple[TP, int]]:
    done: list[tuple[TP, int]] = []
    monkeypatch.setattr(consumer._thread, "seek", lambda tp, offset: done.append((tp, offset)))
    return done


async def test_records_drained_while_the_flow_is_stopped_are_fetched_again(
    consumer: GuardedConsumer, monkeypatch: pytest.MonkeyPatch, seeks: list[tuple[TP, int]]
) -> None:
    changelog, sought_since, source = TP("changelog", 1), TP("changelog", 2), TP(STRIPE_EVENTS, 0)
    positions = {changelog: 40, sought_since: 0, source: 8}  # aiokafka's next fetch offsets
    monkeypatch.setattr(consumer, "_fetch_position", positions.get)
    drained = {changelog: fetched(range(0, 40)), sought_since: fetched(range(300, 310))}
    drained[source] = fetched(range(5, 8))

    async def wait_next_records(self: Any, timeout: float) -> tuple[Any, Any]:
        return drained, set(drained)

    monkeypatch.setattr(Consumer, "_wait_next_records", wait_next_records)
    consumer.flow_active = True
    assert await consumer._wait_next_records(1.0) == (drained, set(drained))
    assert seeks == []  # delivered by getmany: nothing to fetch again

    consumer.flow_active = False  # a rebalance or recovery stopped the flow meanwhile
    await consumer._wait_next_records(1.0)

    # Back to the first drained record; a partition sought elsewhere since keeps that seek
    # (recovery rewinding a changelog must win over records drained before it).
    assert seeks == [(changelog, 0), (source, 5)]


def test_an_empty_or_unassigned_partition_is_not_sought(
    consumer: GuardedConsumer, monkeypatch: pytest.MonkeyPatch, seeks: list[tuple[TP, int]]
) -> None:
    monkeypatch.setattr(consumer, "_fetch_position", lambda tp: None)
    assert consumer.refetch_dropped({TP("changelog", 0): fetched(range(3)), TP("t", 1): []}) == []
    assert seeks == []
