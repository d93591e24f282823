"""The changelog-backed Faust table holding one aggregate per customer (its writer is
processors/runtime/table_writer.py).

Keys are the record keys of `stripe.events` (customer ids, raw bytes) so the table is
co-partitioned with its source. Values are bytes of the codec (tables/codec.py): the same bytes
go to the store and the changelog, and a memory store holds compact bytes, not Python objects.
"""

from __future__ import annotations

import faust
from faust.types import TableT

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
