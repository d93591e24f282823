"""Feeds `billing.account-state` and `billing.invoice-episodes` into the read model: a batch per
transaction, then its offsets.

At-least-once: offsets are committed only after the database committed, and a failed batch is
re-read from its first offset, so nothing is lost; the version guard makes redelivery harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from billstream.api.episodes import EpisodeMessage, decode_episode
from billstream.api.metrics import ApiMetrics
from billstream.api.quarantine import QuarantinedRecord, refused_by_data
from billstream.api.state import AccountStateMessage, MalformedMessage, decode
from billstream.api.store import ApplyResult, Store
from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, INVOICE_EPISODES

Batch = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
Decoded = tuple[ConsumerRecord[bytes, bytes], AccountStateMessage | EpisodeMessage]
MAX_BACKOFF_SECONDS = 30.0

log = logging.getLogger(__name__)


class StateConsumer:
    """Owns the api's consumer group (`<BILLSTREAM_APP_ID>-api`), reading from the earliest."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: ApiMetrics,
        executor: Executor,
        *,
        max_records: int = 2000,
    ) -> None:
        self.topic = settings.topic(ACCOUNT_STATE)
        self.episodes_topic = settings.topic(INVOICE_EPISODES)
        self.group_id = f"{settings.billstream_app_id}-api"
        self.kafka_options = aiokafka_options(settings)
        # Account states are small; the same bound as every other reader keeps one rule.
        self.max_fetch_bytes = record_bytes(settings.stripe_webhook_max_body)
        self.fetch_wait_ms = settings.api_fetch_wait_ms
        self.fetch_min_bytes = settings.api_fetch_min_bytes
        self.store = store
        self.metrics = metrics
        self.executor = executor
        self.max_records = max_records
        self.kafka: AIOKafkaConsumer | None = None
        self.write_error: str | None = None  # set while the read model cannot be written
        self._positions: dict[TopicPartition, int] = {}

    @property
    def assigned(self) -> bool:
        return self.kafka is not None and bool(self.kafka.assignment())

    async def start(self) -> None:
        kafka = AIOKafkaConsumer(
            self.topic,
            self.episodes_topic,
            **self.kafka_options,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=self.max_fetch_bytes,
            # One batch is one database transaction and one offset commit: waiting a little
            # for a fuller fetch costs less than committing every few records.
            fetch_max_wait_ms=self.fetch_wait_ms,
            fetch_min_bytes=self.fetch_min_bytes,
        )
        try:
            await kafka.start()
        except BaseException:
            await kafka.stop()
            raise
        self.kafka = kafka

    async def stop(self) -> None:
        if self.kafka is not None:
            await self.kafka.stop()
            self.kafka = None

    async def run(self) -> None:
        """Consume until cancelled; a failing database backs off, never skips."""
        assert self.kafka is not None, "start() first"
        failures = 0
        while True:
            batch = await self.kafka.getmany(timeout_ms=500, max_records=self.max_records)
            if batch and not await self.handle(batch):
                failures += 1
                await asyncio.sleep(min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures))
                continue
            failures = 0
            self._update_lag()

    async def handle(self, batch: Batch) -> bool:
        """Apply one batch and commit its offsets; False (and rewound) when the write failed."""
        decoded, malformed, tombstones = self._decode(batch)
        loop = asyncio.get_running_loop()
        try:
            with self.metrics.batch_seconds.time():
                result, refused = await loop.run_in_executor(
                    self.executor, self._apply, decoded, malformed
                )
        except Exception as error:
            self._rewind(batch, error)
            return False
        if self.write_error is not None:
            log.info("read model writable again at %s", self.store.display_url)
        self.write_error = None
        self.metrics.messages.labels("applied").inc(result.applied + result.episodes)
        self.metrics.messages.labels("stale").inc(result.stale)
        # The worker marks deletions with `deleted: true`; a tombstone carries no state, so the
        # last known state stays served (docs/api.md).
        self.metrics.messages.labels("tombstone").inc(tombstones)
        # Logged and counted once, not on every retry of the batch.
        for result_name, records in (("malformed", malformed), ("rejected", refused)):
            for record in records:
                self._quarantined(result_name, record)
        await self._commit(batch)
        return True

    def _decode(self, batch: Batch) -> tuple[list[Decoded], list[QuarantinedRecord], int]:
        decoded: list[Decoded] = []
        malformed: list[QuarantinedRecord] = []
        tombstones = 0
        for records in batch.values():
            for record in records:
                try:
                    state: AccountStateMessage | EpisodeMessage | None
                    if record.topic == self.episodes_topic:
                        state = decode_episode(record.key, record.value)
                    else:
                        state = decode(record.key, record.value)
                except MalformedMessage as error:
                    malformed.append(QuarantinedRecord.of(record, str(error)))
                    continue
                if state is None:
                    tombstones += 1
                else:
                    decoded.append((record, state))
        return decoded, malformed, tombstones

    def _quarantined(self, result: str, record: QuarantinedRecord) -> None:
        self.metrics.messages.labels(result).inc()
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        log.warning(
            "quarantined %s account-state record %s[%d]@%d key %r: %s",
            result,
            record.topic,
            record.partition,
            record.offset,
            (record.key or b"")[:64],
            record.reason,
            extra=where,
        )

    def _apply(
        self, decoded: list[Decoded], malformed: list[QuarantinedRecord]
    ) -> tuple[ApplyResult, list[QuarantinedRecord]]:
        """The batch in one transaction; if its data is refused, record by record.

        A record the database refuses for its own data is quarantined with the malformed ones;
        any other failure (database down, full, read-only) propagates and the batch is retried.
        """
        refused: list[QuarantinedRecord] = []
        try:
            result = self.store.apply(*_split([value for _, value in decoded]))
        except Exception as error:
            if not refused_by_data(error):
                raise
            log.warning("batch refused by the database (%s); applying one by one", error)
            result, refused = self._apply_one_by_one(decoded)
        self.store.quarantine([*malformed, *refused])
        return result, refused

    def _apply_one_by_one(
        self, decoded: list[Decoded]
    ) -> tuple[ApplyResult, list[QuarantinedRecord]]:
        applied = stale = episodes = 0
        refused: list[QuarantinedRecord] = []
        for record, value in decoded:
            try:
                one = self.store.apply(*_split([value]))
            except Exception as error:
                if not refused_by_data(error):
                    raise
                reason = f"refused by the database: {type(error).__name__}: {error}"
                refused.append(QuarantinedRecord.of(record, reason.splitlines()[0]))
                continue
            applied, stale = applied + one.applied, stale + one.stale
            episodes += one.episodes
        return ApplyResult(applied, stale, episodes), refused

    def _rewind(self, batch: Batch, error: Exception) -> None:
        self.write_error = f"{type(error).__name__}: {error}".splitlines()[0]
        self.metrics.write_errors.inc()
        log.error(
            "cannot write the read model at %s (%s); %d records will be re-read, "
            "offsets not committed",
            self.store.display_url,
            self.write_error,
            sum(len(records) for records in batch.values()),
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        assert self.kafka is not None
        for tp, records in batch.items():
            if records:
                # Revoked meanwhile: the new owner resumes from the committed offset.
                with contextlib.suppress(KafkaError):
                    self.kafka.seek(tp, records[0].offset)

    async def _commit(self, batch: Batch) -> None:
        assert self.kafka is not None
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        self._positions.update(offsets)
        try:
            await self.kafka.commit(offsets)
        except KafkaError as error:
            # Stored already; after a rebalance the records come again and change nothing.
            log.warning("offset commit failed (%s); records will be redelivered", error)

    def _update_lag(self) -> None:
        assert self.kafka is not None
        lag = 0
        for tp in self.kafka.assignment():
            highwater, position = self.kafka.highwater(tp), self._positions.get(tp)
            if highwater is not None and position is not None:
                lag += max(0, highwater - position)
        self.metrics.lag.set(lag)


def _split(
    values: Sequence[AccountStateMessage | EpisodeMessage],
) -> tuple[list[AccountStateMessage], list[EpisodeMessage]]:
    states = [v for v in values if isinstance(v, AccountStateMessage)]
    return states, [v for v in values if isinstance(v, EpisodeMessage)]
