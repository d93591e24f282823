"""The changelog-backed Faust table holding one aggregate per customer, and its writer.

Keys are the record keys of `stripe.events` (customer ids, raw bytes) so the table is
co-partitioned with its source. Values are bytes of the codec (tables/codec.py): the same bytes
go to the store and the changelog, and a memory store holds compact bytes, not Python objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, cast

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, TableT
from faust.types.stores import StoreT

from billstream.topics import replication_configs

# Persisted contract: the changelog topic is `<app id>-customer-state-changelog`.
CUSTOMER_STATE_TABLE = "customer-state"

# The changelog keeps only the latest aggregate per customer; compaction bounds it.
CHANGELOG_CONFIGS: dict[str, str] = {
    "cleanup.policy": "compact",
    "segment.ms": str(6 * 3600 * 1000),
    "min.cleanable.dirty.ratio": "0.2",
}


# RocksDB memory per partition database (Faust's defaults allow 3 x 64 MiB write buffers and a
# 2 GiB block cache each): about 16 MiB per partition held by this worker. Values are a few KiB
# and the working set is the recently active customers, which the worker's StateCache holds too.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 8 * 1024 * 1024,
}


def customer_state_table(app: faust.App, partitions: int) -> TableT[bytes, bytes]:
    """Declare the per-customer table on `app` (one changelog partition per source partition)."""
    return app.Table(
        CUSTOMER_STATE_TABLE,
        default=None,
        key_type=bytes,  # bytes types select Faust's "raw" codec for keys and values
        value_type=bytes,
        partitions=partitions,
        # Faust creates it with `topic_replication_factor`; it needs the min ISR of our topics.
        extra_topic_configs=CHANGELOG_CONFIGS
        | replication_configs(app.conf.topic_replication_factor),
        options=dict(ROCKSDB_OPTIONS),  # a copy: the store pops keys from it; memory:// ignores it
        help="customer id -> encoded aggregate (account, subscriptions, episodes, applied ids)",
    )


PERSIST_OFFSET_EVERY = 1.0  # seconds between writes of a partition's changelog offset


class Producer(Protocol):
    """The worker's producer (processors/producer.py): queues a record; a failure fails the
    next flush, which precedes every offset commit."""

    async def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...


class ChangelogProducer(Producer, Protocol):
    """... that also reports each delivered record's offset (the table persists it)."""

    def on_delivery(self, topic: str, listener: Callable[[int, int], None]) -> None: ...


class TableWriter:
    """Reads and writes `table` like Faust's Table, minus the buffered hop per changelog record.

    Faust sends each table write through its ProducerBuffer (a queue, a task and a future
    per record; the biggest per-event cost of the worker). Here the store is updated and the
    changelog record handed straight to the producer; the offset of a delivered record is
    kept in the store (RocksDB reads only the changelog tail on start), as Faust does, but at
    most once a second per partition.
    """

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self.table = table
        self.changelog = table.changelog_topic.get_topic_name()
        self._producer: ChangelogProducer | None = None
        self._next_offset_write: dict[int, float] = {}  # partition -> monotonic time

    def get(self, key: bytes, partition: int) -> bytes | None:
        """The value of `key`, stored in `partition` (co-partitioned with its source record)."""
        store = self.table.data
        if isinstance(store, RocksDBStore):
            # Outside a stream context Faust's store would search every partition's database.
            found: bytes | None = store._db_for_partition(partition).get(key)
            return found
        value: bytes | None = store.get(key)
        return value

    async def set(self, key: bytes, value: bytes, partition: int) -> None:
        """Store `value` and send it to the changelog partition of the source record."""
        store = self.table.data
        if isinstance(store, RocksDBStore):
            # Faust's RocksDB store files a key under the partition of the event being processed
            # (a stream context); records are handed to us directly, so file it ourselves.
            store._key_index[key] = partition
            store._db_for_partition(partition).put(key, value)
        else:
            store[key] = value
        producer = cast(ChangelogProducer, self.table.app.producer)
        if producer is not self._producer:  # the app creates its producer when first used
            producer.on_delivery(self.changelog, self._persisted)
            self._producer = producer
        # A record that fails to arrive fails the producer's next flush, hence the commit.
        await producer.produce(self.changelog, key, value, partition=partition)

    def _persisted(self, partition: int, offset: int) -> None:
        # Recovery reads the changelog after this offset. Faust writes it for every record (a
        # RocksDB put, ~3 µs); once a second per partition suffices: an offset that lags the
        # data only makes recovery re-apply a second of records, which ends in the same state.
        now = time.monotonic()
        if now < self._next_offset_write.get(partition, 0.0):
            return
        self._next_offset_write[partition] = now + PERSIST_OFFSET_EVERY
        store = cast(StoreT[bytes, bytes], self.table.data)
        store.set_persisted_offset(TP(self.changelog, partition), offset)
