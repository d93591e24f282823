"""The delivery-report poller: its pace while records are in flight, and at rest."""

from __future__ import annotations

import asyncio

from billstream.librdkafka import IDLE_POLL, Poller


class InFlight:
    """A producer stand-in with `records` in flight; counts polls."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.polls = 0

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def __len__(self) -> int:
        return self.records


async def polls_within(seconds: float, producer: InFlight, busy: float) -> int:
    poller = Poller(producer, asyncio.get_running_loop(), busy=busy)  # type: ignore[arg-type]
    poller.start()
    poller.soon()  # a record was queued
    await asyncio.sleep(seconds)
    poller.cancel()
    return producer.polls


async def test_it_polls_at_the_busy_pace_while_records_are_in_flight() -> None:
    fast = await polls_within(0.2, InFlight(records=5), busy=0.005)
    slow = await polls_within(0.2, InFlight(records=5), busy=0.1)

    assert 1 <= slow <= 2 < 10 <= fast


async def test_at_rest_it_polls_at_the_idle_pace() -> None:
    assert await polls_within(IDLE_POLL / 2, InFlight(records=0), busy=0.001) <= 1
