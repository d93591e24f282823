"""The record handler: stripe.events → per-customer table → billing.account-state, poison → DLQ.

The worker's consumer calls `EventProcessor.handle` for every record of stripe.events, in
partition order (processors/runtime/direct.py). It never raises on input: parse and reducer failures
go to the dead-letter topic with their reason and the stream goes on. Only broker failures stop
it (and the offsets of unprocessed records stay uncommitted, so nothing is lost). Records go
straight to the producer, whose flush precedes every offset commit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from billstream.entitlements.request import entitlements_request
from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.dlq import (
    MISSING_KEY,
    REDUCER_ERROR,
    dlq_headers,
    header_items,
    header_value,
)
from billstream.processors.metrics import ProcessorMetrics
from billstream.processors.parsing import InvalidEvent
from billstream.processors.produce import Producer
from billstream.processors.steps import Applied, StateCache, apply_record
from billstream.refetch import request_record, subscription_tie_request
from billstream.routing import HEADER_ACCOUNT, HEADER_EVENT_ID, HEADER_RECEIVED_AT

log = logging.getLogger(__name__)


class App(Protocol):
    """Where the producer lives (the Faust app creates it when it starts)."""

    @property
    def producer(self) -> Producer: ...


class Table(Protocol):
    """The customer-state table (billstream.processors.runtime.table_writer.TableWriter)."""

    def get(self, key: bytes, partition: int) -> bytes | None: ...

    async def set(self, key: bytes, value: bytes, partition: int) -> None: ...


class Record(Protocol):
    """The parts of a consumed message the handler reads (Faust's `Message`)."""

    key: bytes | None
    value: bytes
    headers: Any
    partition: int
    offset: int


@dataclass
class EventProcessor:
    """Handles one consumed record at a time; the state lives in `table`."""

    table: Table
    app: App
    output_topic: str
    dlq_topic: str
    metrics: ProcessorMetrics
    config: ReducerConfig
    episodes_topic: str | None = None  # billing.invoice-episodes; None: not published
    states: StateCache = field(default_factory=StateCache)
    # Where refetch requests go (stripe.thin-events, read by the resolver): entitlements beyond
    # a summary's first page, same-second subscription ties no rule decides; None when
    # refetching is off (no STRIPE_API_KEY).
    refetch_topic: str | None = None

    async def handle(self, record: Record) -> None:
        headers = header_items(record.headers)
        key = record.key
        try:
            if not key:
                raise InvalidEvent(MISSING_KEY)
            previous = self.table.get(key, record.partition)
            state = self.states.load(key, previous)
            applied = apply_record(previous, record.value, self.config, state)
        except InvalidEvent as error:
            log.warning("dead-lettered: %s", error, extra=_context(headers, record, error.reason))
            await self._dead_letter(record, headers, error.reason)
        except Exception:
            log.exception("reducer error", extra=_context(headers, record, REDUCER_ERROR))
            await self._dead_letter(record, headers, REDUCER_ERROR)
        else:
            assert key is not None
            await self._publish(key, record.partition, applied)
            if self.refetch_topic is not None:
                await self._request_refetches(applied.effects, headers)
        self._observe_lag(headers)

    async def _publish(self, key: bytes, partition: int, applied: Applied) -> None:
        if applied.value is not None:
            # One write: state, episodes and applied ids; changelog partition = source partition.
            await self.table.set(key, applied.value, partition)
            self.states.keep(key, applied)
        if applied.output is not None:
            await self.app.producer.produce(self.output_topic, key, applied.output)
        if self.episodes_topic is not None:
            for episode_key, episode in applied.episodes:
                await self.app.producer.produce(self.episodes_topic, episode_key, episode)
        self.metrics.record(applied.effects)

    async def _request_refetches(
        self, effects: list[fx.Effect], headers: list[tuple[str, bytes]]
    ) -> None:
        """Publish a request for each effect that needs Stripe's API, with the event's Connect
        account (if any). After the state's table write: a crash in between re-requests on the
        redelivery (processors/entitlements.py, pending_fetch)."""
        assert self.refetch_topic is not None
        for effect in effects:
            if type(effect) is fx.EntitlementsIncomplete:
                request = entitlements_request(effect.customer_id, effect.created)
            elif type(effect) is fx.SubscriptionRefetch:
                request = subscription_tie_request(
                    effect.customer_id, effect.subscription_id, effect.created
                )
            else:
                continue
            account = header_value(headers, HEADER_ACCOUNT)
            key, value, request_headers = request_record(
                request, int(time.time() * 1000), account.decode() if account else None
            )
            await self.app.producer.produce(self.refetch_topic, key, value, headers=request_headers)

    async def _dead_letter(
        self, record: Record, headers: list[tuple[str, bytes]], reason: str
    ) -> None:
        dead = dlq_headers(headers, reason)
        await self.app.producer.produce(self.dlq_topic, record.key, record.value, headers=dead)
        self.metrics.dlq.labels(reason=reason).inc()

    def _observe_lag(self, headers: list[tuple[str, bytes]]) -> None:
        received = header_value(headers, HEADER_RECEIVED_AT)
        if received is None:
            return
        try:
            received_ms = int(received)
        except ValueError:
            return
        self.metrics.event_lag.observe(max(0.0, time.time() - received_ms / 1000))


def _context(headers: list[tuple[str, bytes]], record: Record, reason: str) -> dict[str, Any]:
    event_id = header_value(headers, HEADER_EVENT_ID)
    return {
        "event_id": event_id.decode(errors="replace") if event_id else None,
        "partition": record.partition,
        "offset": record.offset,
        "reason": reason,
    }
