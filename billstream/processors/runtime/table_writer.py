"""TableWriter: the customer-state table read and written past Faust's per-record buffer.

It touches the RocksDB store's private per-partition databases (`_db_for_partition`,
`_key_index`): see processors/runtime/__init__.py.
"""

from __future__ import annotations

import time
from typing import cast

from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, TableT
from faust.types.stores import StoreT

from billstream.processors.produce import ChangelogProducer

PERSIST_OFFSET_EVERY = 1.0  # seconds between writes of a partition's changelog offset


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
