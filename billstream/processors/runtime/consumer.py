"""A Faust consumer that never commits past a record it did not process, un-sticks itself, and
fetches without idling (PromptConsumerThread).

faust-streaming 0.15.3 records processed ("acked") offsets per partition and commits the
contiguous run that follows the committed offset. Its bookkeeping has holes that matter for
crash safety (the SIGKILL test hit the second one about once in ten restarts):
- a head gap of exactly one offset is committed over (faust #606), and with no committed
  offset yet (or offset 0) the head is not checked at all: a record never processed is lost;
- a record dropped while the flow is suspended around recovery leaves a head gap that never
  fills: the partition stops committing forever (faust #596). Here the main cause was that
  aiokafka's seek_to_committed does not move a partition that has no commit yet: records
  fetched during recovery were dropped and never fetched again;
- records fetched before a rebalance and skipped after it are acked without being processed;
- records drained from aiokafka while the flow is stopped are dropped by `getmany` with the
  position already past them: for a changelog partition that recovery had just sought back,
  recovery then waits forever for records that are never fetched again (our two-worker
  takeover test hit it about once in six runs when a worker joined a running one).
Here a head gap blocks the commit (a replay is harmless: state is idempotent), a gap that
outlives `STUCK_AFTER` seconds re-seeks the partition to its committed offset so the missing
records are fetched again, acks of a previous generation are ignored, and records drained
while the flow is stopped are fetched again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP
from faust.types import tuples as faust_tuples
from mode import Service

STUCK_AFTER = 10.0  # seconds a head gap may last before the partition is fetched again
CHECK_EVERY = 2.0
# faust-streaming's lock around ack bookkeeping (0.15.3 has it; the canary test checks it).
ACK_LOCK: contextlib.AbstractContextManager[Any] = getattr(
    faust_tuples, "ack_lock", contextlib.nullcontext()
)


@dataclass(frozen=True)
class FetchBatching:
    """How long (`wait_ms`) and until how many bytes (`min_bytes`) the broker may hold a fetch
    (WORKER_FETCH_WAIT_MS, WORKER_FETCH_MIN_BYTES; the defaults are Settings')."""

    wait_ms: int = 25
    min_bytes: int = 256 * 1024


def gap_covers(intervals: Iterable[Any], start: int, end: int) -> bool:
    """Whether recorded offset gaps (compaction, transaction markers) span [start, end)."""
    covered: set[int] = set()
    for interval in intervals:
        covered.update(range(max(interval.begin, start), min(interval.end, end)))
    return len(covered) == end - start


class PromptConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, with fetches the broker holds `FetchBatching` instead of 1.5 s.

    faust-streaming builds the aiokafka consumer with `fetch_max_wait_ms=1500`, fixed. aiokafka
    keeps one fetch in flight per broker and leaves partitions with unconsumed records out of
    it, so while the worker works through a batch the next fetch asks only for the partitions
    that are caught up, and the broker holds it the full 1.5 s; the drained partitions cannot
    be fetched meanwhile. The worker sat idle ~75 % of the time on a backlog (bench/worker.py:
    2,100 → 6,300 records/s) and each partition's records waited up to 1.5 s longer live.

    The other way round, a fetch answered at the first record (Kafka's default `fetch_min_bytes`
    of 1) costs a fetch, a thread hand-over and a wake-up per few records at a steady rate:
    at 1,000 events/s the worker spent several times its backlog cost per event. The broker
    now holds a fetch until `min_bytes` arrived or `wait_ms` passed, so batches grow with the
    rate and a record waits at most `wait_ms` (docs/deployment.md, "Batching").
    """

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer: AIOKafkaConsumer = super()._create_worker_consumer(transport)
        batching = getattr(transport.app, "fetch_batching", FetchBatching())
        # Read by start(), which builds the fetcher.
        consumer._fetch_max_wait_ms = batching.wait_ms
        consumer._fetch_min_bytes = batching.min_bytes
        return consumer


class GuardedConsumer(Consumer):
    """Faust's aiokafka consumer with strict commit bookkeeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gap_since: dict[TP, tuple[int, float]] = {}  # partition -> (committed, first seen)

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

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
        """Faust's ack, except for records of an earlier generation (not recorded as acked).

        Under Faust's `ack_lock` like Faust's own ack (which `super().ack` takes itself): the
        `acked` test-and-set and the bookkeeping are one step for threads that ack too.
        """
        if message.generation_id != self.app.consumer_generation_id:
            # Fetched before the last rebalance and skipped by the stream, not processed: the
            # seek to the committed offset that followed the rebalance fetches it again.
            with ACK_LOCK:
                message.acked = True
                self._unacked_messages.discard(message)
            return False
        acked: bool = super().ack(message)
        return acked

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
            # aiokafka's seek_to_committed leaves a partition without a commit (or at 0) where
            # it is: records fetched before this seek, and dropped around recovery, would never
            # come again (a gap; our SIGKILL test hit it). Rewind them like a fresh consumer.
            earliest = await self.earliest_offsets(*unknown)
            for tp in unknown:
                self._committed_offset[tp] = earliest[tp]
            await self.seek_wait({tp: earliest[tp] for tp in unknown})

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active_partitions = await super()._wait_next_records(timeout)
        if records and not self.flow_active:  # getmany will drop them: fetch them again
            self.refetch_dropped(records)
        return records, active_partitions

    def refetch_dropped(self, records: Mapping[Any, Sequence[Any]]) -> list[TP]:
        """Seek each partition back to the first of its `records`, which Faust's getmany is about
        to drop, unless a seek moved the partition since they were drained (that seek wins)."""
        refetched = []
        for tp, batch in records.items():
            if batch and self._fetch_position(tp) == batch[-1].offset + 1:
                self.log.info(
                    "partition %s: %d records fetched while the flow was stopped; "
                    "fetching them again from offset %s",
                    tp,
                    len(batch),
                    batch[0].offset,
                )
                self._thread.seek(tp, batch[0].offset)
                refetched.append(tp)
        return refetched

    def _fetch_position(self, tp: TP) -> int | None:
        """aiokafka's next fetch offset for `tp` (None if unassigned or not yet known)."""
        consumer = self._thread._consumer
        subscription = consumer._subscription.subscription if consumer is not None else None
        if subscription is None or tp not in subscription.assignment.tps:
            return None
        position: int | None = subscription.assignment.state_value(tp)._position
        return position

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
