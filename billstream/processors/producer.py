"""A Faust producer that never lets offsets be committed ahead of unsent or failed records.

Before committing offsets Faust's consumer calls `producer.flush()`. In faust-streaming 0.15.3
that flush has two gaps: the buffer that carries table (changelog) writes stops flushing as
soon as one hand-over takes longer than 0.1 s, and aiokafka's flush waits for batches without
raising when one failed. Either way offsets could be committed past state changes that never
reached Kafka. This flush drains the buffer completely and fails if any delivery failed, so the
commit fails instead and the records are processed again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.exceptions import ProducerSendError
from faust.transport.drivers.aiokafka import Producer


class DrainingProducer(Producer):
    """aiokafka-backed Faust producer with a complete, failure-reporting `flush`."""

    _delivery_error: BaseException | None = None

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        delivery = await super().send(*args, **kwargs)
        if isinstance(delivery, asyncio.Future):
            delivery.add_done_callback(self.on_delivered)
        return delivery

    def on_delivered(self, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self._delivery_error = delivery.exception()

    async def flush(self) -> None:
        while self.buffer.size:
            if self.buffer.should_stop:
                raise ProducerSendError("producer buffer stopped with records still queued")
            await self.buffer.flush()
        await super().flush()
        if self._delivery_error is not None:
            raise ProducerSendError(f"a record was not delivered: {self._delivery_error!r}")
