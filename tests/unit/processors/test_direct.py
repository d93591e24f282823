"""The worker's consumer hands stripe.events records straight to the handler, acking each after it.

Offsets must stay exactly as safe as Faust's own delivery: a record is acked only once handled,
and during a rebalance nothing more is handed over and nothing unhandled is acked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP, Message

from billstream.processors.runtime.app import BillstreamFaustApp, create_faust_app
from billstream.processors.runtime.direct import DirectConsumer
from tests.support.settings import SettingsFactory

TOPIC = "t.stripe.events"
PARTITION = TP(TOPIC, 0)


class Recorder:
    """A handler that records the offsets it saw and whether each was acked at the time."""

    def __init__(self, consumer: DirectConsumer, on_offset: dict[int, Any] | None = None) -> None:
        self.consumer = consumer
        self.handled: list[int] = []
        self.acked_while_handling: list[bool] = []
        self.on_offset = on_offset or {}

    async def __call__(self, message: Message) -> None:
        self.handled.append(message.offset)
        self.acked_while_handling.append(message.acked)
        action = self.on_offset.get(message.offset)
        if action is not None:
            action()


@pytest.fixture
async def app(make_settings: SettingsFactory) -> BillstreamFaustApp:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    app.topics._acking_topics.add(TOPIC)  # type: ignore[attr-defined]  # on Conductor, not ConductorT
    return app


def consumer_of(app: BillstreamFaustApp) -> DirectConsumer:
    consumer = app.consumer
    assert isinstance(consumer, DirectConsumer)
    return consumer


def batch(app: BillstreamFaustApp, offsets: list[int], topic: str = TOPIC) -> list[Message]:
    messages = []
    for offset in offsets:
        message = Message(topic, 0, offset, 0.0, 0, [], b"cus_1", b"{}", None)
        message.generation_id = app.consumer_generation_id
        messages.append(message)
    return messages


async def test_records_are_handled_in_order_and_each_acked_after_its_handler(
    app: BillstreamFaustApp,
) -> None:
    consumer = consumer_of(app)
    handler = Recorder(consumer)
    app.source_handlers[TOPIC] = handler

    await consumer.deliver(batch(app, [0, 1, 2]))

    assert handler.handled == [0, 1, 2]
    assert handler.acked_while_handling == [False, False, False]
    assert consumer._acked[PARTITION] == [0, 1, 2]
    assert not consumer._unacked_messages
    assert consumer._read_offset[PARTITION] == 2


async def test_a_suspended_flow_stops_the_hand_over_and_leaves_the_rest_unacked(
    app: BillstreamFaustApp,
) -> None:
    consumer = consumer_of(app)
    handler = Recorder(consumer, {1: consumer.suspend_flow.set})  # a rebalance begins
    app.source_handlers[TOPIC] = handler

    await consumer.deliver(batch(app, [0, 1, 2, 3]))

    assert handler.handled == [0, 1]
    assert consumer._acked[PARTITION] == [0, 1]  # the commit cannot pass offset 2
    assert not consumer._unacked_messages  # revocation does not wait for records never handed
    assert consumer._read_offset[PARTITION] == 1


async def test_a_new_generation_stops_the_hand_over(app: BillstreamFaustApp) -> None:
    consumer = consumer_of(app)

    def rebalanced() -> None:
        app.consumer_generation_id += 1

    handler = Recorder(consumer, {0: rebalanced})
    app.source_handlers[TOPIC] = handler

    await consumer.deliver(batch(app, [0, 1, 2]))

    assert handler.handled == [0]
    assert consumer._acked[PARTITION] == []  # acks of the old generation are ignored
    assert not consumer._unacked_messages


@pytest.mark.parametrize("topic", [TOPIC, "t.changelog"])
async def test_a_batch_fetched_before_a_rebalance_is_not_handed_over_after_it(
    app: BillstreamFaustApp, topic: str
) -> None:
    consumer = consumer_of(app)
    handler = Recorder(consumer)
    app.source_handlers[TOPIC] = handler
    delivered: list[Message] = []

    async def faust_callback(message: Message) -> None:
        delivered.append(message)

    consumer.callback = faust_callback
    stale = batch(app, [40, 41, 42], topic=topic)
    app.consumer_generation_id += 1  # the rebalance completed; recovery sought back to 0
    tp = TP(topic, 0)
    consumer._read_offset.pop(tp, None)

    await consumer.deliver(stale)

    assert handler.handled == []
    assert delivered == []
    assert consumer._read_offset[tp] is None  # records from 0 on are still taken
    assert not consumer._gap[tp]


async def test_records_already_handed_over_are_skipped_and_holes_are_recorded_as_gaps(
    app: BillstreamFaustApp,
) -> None:
    consumer = consumer_of(app)
    handler = Recorder(consumer)
    app.source_handlers[TOPIC] = handler
    consumer._read_offset[PARTITION] = 5

    await consumer.deliver(batch(app, [3, 4, 5, 8, 9]))

    assert handler.handled == [5, 8, 9]
    gaps = sorted((interval.begin, interval.end) for interval in consumer._gap[PARTITION])
    assert gaps == [(6, 8)]  # offsets 6 and 7 hold no record (compacted or markers)


async def test_a_topic_without_a_handler_takes_fausts_own_delivery(
    app: BillstreamFaustApp,
) -> None:
    consumer = consumer_of(app)
    app.source_handlers[TOPIC] = Recorder(consumer)
    delivered: list[Message] = []

    async def faust_callback(message: Message) -> None:
        delivered.append(message)

    consumer.callback = faust_callback
    other = batch(app, [7], topic="t.other")

    await consumer.deliver(other)

    assert delivered == other
    assert not other[0].acked  # Faust's stream acks it once its agent is done


async def test_lag_counts_the_records_not_yet_handed_over_on_assigned_partitions(
    app: BillstreamFaustApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = consumer_of(app)
    other, unread = TP(TOPIC, 1), TP(TOPIC, 2)
    highwaters = {PARTITION: 10, other: 7, unread: 50, TP("t.changelog", 0): 99}
    monkeypatch.setattr(consumer, "assignment", lambda: set(highwaters))
    monkeypatch.setattr(consumer, "highwater", highwaters.get)
    app.source_handlers[TOPIC] = Recorder(consumer)
    await consumer.deliver(batch(app, [0, 1, 2, 3]))  # partition 0: next to read is 4
    consumer._read_offset[other] = 6  # partition 1: caught up

    assert consumer.lag(TOPIC) == 10 - 4  # partition 2 not read yet, other topics not counted
