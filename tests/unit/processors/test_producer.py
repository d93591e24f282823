"""The worker's producer: offsets are never committed past queued or failed records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import ProducerSendError

from billstream.processors.app import create_faust_app
from billstream.processors.producer import DrainingProducer
from tests.conftest import SettingsFactory


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


async def test_flush_returns_only_when_the_buffer_is_empty(make_settings: SettingsFactory) -> None:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    assert isinstance(producer, DrainingProducer)
    producer.buffer = SlowBuffer(size=5)

    await producer.flush()

    assert producer.buffer.size == 0
    assert producer.buffer.flushes >= 5


async def test_flush_refuses_to_report_success_when_the_buffer_stopped_with_messages(
    make_settings: SettingsFactory,
) -> None:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    producer.buffer = SlowBuffer(size=2, should_stop=True)

    # Committing now could skip queued changelog writes: the commit must fail instead.
    with pytest.raises(ProducerSendError, match="still queued"):
        await producer.flush()


async def test_flush_fails_when_a_record_was_not_delivered(make_settings: SettingsFactory) -> None:
    app = create_faust_app(make_settings())
    app.loop = asyncio.get_running_loop()
    producer = app.producer
    producer.buffer = SlowBuffer(size=0)
    delivered, failed = asyncio.Future[object](), asyncio.Future[object]()
    for delivery in (delivered, failed):
        delivery.add_done_callback(producer.on_delivered)
    delivered.set_result(object())
    failed.set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)  # run the done callbacks

    # aiokafka's own flush would return normally here and offsets would be committed.
    with pytest.raises(ProducerSendError, match="not delivered"):
        await producer.flush()
