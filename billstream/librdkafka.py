"""A librdkafka (confluent-kafka) producer's delivery reports, served on the asyncio loop.

Ingest and the worker both send with librdkafka, which batches, compresses and retries in its
own C threads. Its delivery reports are served by `poll(0)` on the loop itself, every `busy`
seconds while records are in flight: their callbacks resolve futures directly, with no helper
thread waiting for the GIL (up to the 5 ms switch interval) to hand them over. Ingest answers a
webhook on its report, so it polls every millisecond; the worker only needs its reports before
a commit (whose flush drains them) and polls less often. A blocking `flush()` would run them on
no loop at all, so draining polls too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

BUSY_POLL = 0.001  # default seconds between delivery-report polls while records are in flight
IDLE_POLL = 0.1  # ... and while none are (error callbacks and logs only)


class Poller:
    """Calls `producer.poll(0)` on `loop`: every `busy` seconds while records are in flight,
    else every IDLE_POLL. `on_error` gets errors `poll` raises (a fatal one does) and polling goes
    on; without it they propagate to the loop's exception handler and polling stops."""

    def __init__(
        self,
        producer: Producer,
        loop: asyncio.AbstractEventLoop,
        on_error: Callable[[KafkaError], None] | None = None,
        busy: float = BUSY_POLL,
    ) -> None:
        self._producer = producer
        self._busy_poll = busy
        self._loop = loop
        self._on_error = on_error
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False

    def start(self) -> None:
        """Poll at the idle pace until records are queued."""
        self._schedule(IDLE_POLL)

    def soon(self) -> None:
        """A record was queued: poll within `busy` (the idle poll may be 100 ms away)."""
        if self._timer is None or not self._busy:
            self._schedule(self._busy_poll)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._busy = False

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._busy = delay == self._busy_poll
        self._timer = self._loop.call_later(delay, self._poll)

    def _poll(self) -> None:
        self._timer = None
        try:
            self._producer.poll(0)
        except KafkaException as error:
            if self._on_error is None:
                raise
            self._on_error(error.args[0])
        self._schedule(self._busy_poll if len(self._producer) else IDLE_POLL)


async def drain(producer: Producer, timeout: float) -> int:
    """Serve delivery reports until no record is in flight or `timeout` seconds passed; returns
    how many records are still in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        producer.poll(0)
        if not len(producer) or loop.time() > deadline:
            return len(producer)
        await asyncio.sleep(BUSY_POLL)
