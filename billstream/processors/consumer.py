"""A Faust consumer that never commits past a record it did not process, and un-sticks itself.

faust-streaming 0.15.3 records processed ("acked") offsets per partition and commits the
contiguous run that follows the committed offset. Its bookkeeping has holes that matter for
crash safety (the SIGKILL test hit the second one about once in ten restarts):
- a head gap of exactly one offset is committed over (faust #606), and with no committed
  offset yet (or offset 0) the head is not checked at all: a record never processed is lost;
- a record dropped while the flow is suspended around recovery leaves a head gap that never
  fills: the partition stops committing forever (faust #596);
- records fetched before a rebalance and skipped after it are acked without being processed.
Here a head gap blocks the commit (a replay is harmless: state is idempotent), a gap that
outlives `STUCK_AFTER` seconds re-seeks the partition to its committed offset so the missing
records are fetched again, and acks of a previous generation are ignored.

It is also the worker's biggest throughput lever: Faust hands each fetched record to the
streams through `wait_first` (four tasks and an `asyncio.wait` per record, to abandon the
hand-over if the flow is suspended meanwhile). While the flow is active the record is handed
over directly; measured on this machine, Faust's own ceiling for one produce per record rose
from ~1,050 to ~1,900 records/s (bench/worker.py has the worker's figures). A record whose
hand-over outlives a suspension reaches the stream with a previous generation, which the
stream skips and `ack` ignores; the seek to the committed offset fetches it again.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from mode import Service
from mode.services import WaitArgT, WaitResults

STUCK_AFTER = 10.0  # seconds a head gap may last before the partition is fetched again
CHECK_EVERY = 2.0


def gap_covers(intervals: Iterable[Any], start: int, end: int) -> bool:
    """Whether recorded offset gaps (compaction, transaction markers) span [start, end)."""
    covered: set[int] = set()
    for interval in intervals:
        covered.update(range(max(interval.begin, start), min(interval.end, end)))
    return len(covered) == end - start


class GuardedConsumer(Consumer):
    """Faust's aiokafka consumer with strict commit bookkeeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gap_since: dict[TP, tuple[int, float]] = {}  # partition -> (committed, first seen)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None:
            head = min(acked)
            if head > committed and not gap_covers(
                self._gap[tp].overlap(committed, head), committed, head
            ):
                self._gap_since.setdefault(tp, (committed, time.monotonic()))
                return None  # offsets committed..head-1 were never processed: do not skip them
        self._gap_since.pop(tp, None)
        offset: int | None = super()._new_offset(tp)
        return offset

    def ack(self, message: Any) -> bool:
        if message.generation_id != self.app.consumer_generation_id:
            # Fetched before the last rebalance and skipped by the stream, not processed: the
            # seek to the committed offset that followed the rebalance fetches it again.
            message.acked = True
            self._unacked_messages.discard(message)
            return False
        acked: bool = super().ack(message)
        return acked

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:
        """Faust calls this only to hand a record to the streams: do it directly when active."""
        if len(coros) == 2 and timeout is None and not self.suspend_flow.is_set():
            delivery, suspended = coros
            if inspect.iscoroutine(suspended) and inspect.isawaitable(delivery):
                suspended.close()  # the suspend_flow.wait() coroutine Faust built for the race
                result = await delivery
                return WaitResults([delivery], [result], False)
        results: WaitResults = await super().wait_first(*coros, timeout=timeout)
        return results

    async def perform_seek(self) -> None:
        await super().perform_seek()
        # Faust stores "no committed offset" and offset 0 alike as None; the head check needs
        # the first offset the consumer will read: the log start (auto_offset_reset=earliest).
        unknown = [
            tp
            for tp in self.assignment()
            if self._committed_offset[tp] is None and self.app.topics.acks_enabled_for(tp.topic)
        ]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp in unknown:
                self._committed_offset[tp] = earliest[tp]

    @Service.task
    async def _refetch_stuck_partitions(self) -> None:
        async for _ in self.itertimer(CHECK_EVERY, name="refetch_stuck"):
            await self.refetch_stuck(time.monotonic())

    async def refetch_stuck(self, now: float) -> list[TP]:
        """Seek partitions whose head gap outlived STUCK_AFTER back to their committed offset."""
        stuck = []
        for tp, (committed, since) in list(self._gap_since.items()):
            if now - since < STUCK_AFTER:
                continue
            del self._gap_since[tp]
            if tp not in self.assignment() or self._committed_offset[tp] != committed:
                continue
            self.log.warning(
                "partition %s: records from offset %s were never processed; fetching again",
                tp,
                committed,
            )
            await self.seek(tp, committed)
            stuck.append(tp)
        return stuck
