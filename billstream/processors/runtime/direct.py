"""The source topic's records go from Faust's fetch loop straight to the processor.

faust-streaming hands each record to an agent through the conductor, a per-topic queue and the
agent's stream: two tasks per record (`wait_first` in the fetch loop), a queue hand-over, an
Event and its ack. That machinery cost the worker more CPU per record than the reducer
(py-spy, bench/worker.py). For the topics given a handler, this consumer calls the handler
directly, record by record in fetch order, and acks each record once it was handled; Faust keeps
everything else (group membership, table recovery, standby replicas, offset commits). Topics
without a handler still take Faust's own path.

Offsets keep Faust's bookkeeping: a record is tracked when it is taken from the batch and acked
after its handler returned; GuardedConsumer commits only contiguous acked runs. During a
rebalance (flow suspended, or a generation other than the batch's) no further record is handed
over: those records stay unacked and the partition's next owner fetches them again from the
committed offset.
Faust's revocation waits for tracked records, so a record being handled finishes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from faust.types import TP, Message
from mode import Service

from billstream.processors.runtime.consumer import GuardedConsumer

Handler = Callable[[Any], Awaitable[None]]  # called with each Faust `Message`

YIELD_EVERY = 100  # records handled between yields to the event loop (probes, timers, polls)


class DirectConsumer(GuardedConsumer):
    """GuardedConsumer that calls `handlers[topic](message)` instead of delivering to agents."""

    def __init__(
        self, *args: Any, handlers: Mapping[str, Handler] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # The app's `source_handlers` (runtime/app.py), filled by the worker after it is built.
        self.handlers: Mapping[str, Handler] = (
            handlers if handlers is not None else getattr(self.app, "source_handlers", {})
        )

    async def _drain_messages(self, fetcher: Any) -> None:  # the fetcher's loop
        if not self.handlers:
            await super()._drain_messages(fetcher)
            return
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                batch = [message async for _, message in self.getmany(timeout=1.0)]
                await asyncio.sleep(0)
                if batch and not self.should_stop:
                    await self.deliver(batch)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise

    async def deliver(self, batch: list[Message]) -> None:
        """Hand `batch` over in order; stop at the first sign of a rebalance.

        The generation is the one the batch was fetched in, not the current one: a batch
        fetched before a rebalance may be delivered after it, when the partitions were sought
        again (recovery seeks changelog partitions back). Handing it over then would move read
        offsets past records the seek asked for, and those would be dropped as already seen:
        recovery would wait for them forever (our two-worker takeover test hit it).
        """
        if not batch:
            return
        generation = batch[0].generation_id  # one fetch: one generation
        if self._rebalancing(generation):
            return
        for index, message in enumerate(await self._unseen(batch)):
            if self._rebalancing(generation):
                return  # the rest is not tracked, not acked: fetched again after the rebalance
            handler = self.handlers.get(message.topic)
            if handler is None:
                # Faust's own delivery (e.g. changelog records for recovery and standbys),
                # exactly as its fetch loop does it.
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            else:
                self.track_message(message)  # a revocation waits until it is acked
                await handler(message)
                self.ack(message)
            self._read_offset[message.tp] = message.offset
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)

    async def _unseen(self, batch: list[Message]) -> list[Message]:
        """The records not yet handed over (Faust's read-offset filter, gaps recorded)."""
        fresh = []
        last: dict[TP, int | None] = {}  # the read offset as it will be once `fresh` is handled
        for message in batch:
            tp, offset = message.tp, message.offset
            read = last[tp] if tp in last else self._read_offset[tp]
            if read is not None and offset < read:
                continue  # already handed over in this generation
            if read and offset - read > 1 and self.app.topics.acks_enabled_for(tp.topic):
                # Offsets with no record (compaction, transaction markers) may be committed over.
                # Only the hole: Faust's loop passes `offset` too, which would let a commit
                # pass this record before it was handled.
                await self._add_gap(tp, read + 1, offset - 1)
            last[tp] = offset
            fresh.append(message)
        return fresh

    def lag(self, topic: str) -> int:
        """Records of `topic` on this worker's partitions not handed over yet (high watermark
        minus the next offset to read); partitions not read since their assignment count 0."""
        total = 0
        for tp in self.assignment():
            if tp.topic != topic:
                continue
            read, highwater = self._read_offset[tp], self.highwater(tp)
            if read is not None and highwater is not None:
                total += max(0, highwater - (read + 1))
        return total

    def _rebalancing(self, generation: int | None) -> bool:
        return (
            not self.flow_active
            or self.suspend_flow.is_set()
            or self.app.consumer_generation_id != generation
        )
