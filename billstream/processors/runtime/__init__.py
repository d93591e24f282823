"""Every touch of faust-streaming's, mode's, aiokafka's and the RocksDB store's private names.

Nothing else in billstream uses them (an import-linter contract in pyproject.toml keeps the
handler, its rules and metrics free of faust, mode and aiokafka), and
tests/unit/processors/test_runtime_canary.py checks each name below against the installed
versions, so an upgrade that renames one fails that test instead of hanging a rebalance.

Modules: `app` (the Faust app and its transport), `consumer` (commit bookkeeping, prompt
fetches), `direct` (records straight to the handler), `producer` (librdkafka sends, a flush
that fails), `table_writer` (the table without Faust's per-record buffer).

The app gets our consumer and producer through faust's extension point, the transport's
`Consumer` and `Producer` classes (app.BillstreamTransport, set with the public `App.transport`
setter), not by overriding the private `App._new_consumer` / `App._new_producer`.

Methods overridden, and why:
- `faust.transport.consumer.Consumer._new_offset` (consumer): never commit over a head gap.
- `Consumer._wait_next_records` (consumer): fetch again what `getmany` drops while the flow is
  stopped.
- `Consumer._drain_messages` (direct): the fetch loop, calling the handler per record.
- `faust.transport.drivers.aiokafka.Consumer._new_consumer_thread` (consumer): our thread class.
- `AIOKafkaConsumerThread._create_worker_consumer` (consumer): set the fetch wait (100 ms).

Attributes read or written, and why:
- Consumer `_acked`, `_committed_offset`, `_gap` (read; `_committed_offset` written after the
  first seek): the head-gap check in `_new_offset`; `_unacked_messages` (discard): acks of an
  earlier generation; `_read_offset`, `_n_acked`, `_commit_every` (read and written) and
  `_add_gap` (called): what Faust's own fetch loop does per record, done by `direct`;
  `_thread` and its `_consumer` (read): the aiokafka consumer, to seek and read positions.
- `faust.types.tuples.ack_lock` (taken): faust's lock around ack bookkeeping, taken by
  `GuardedConsumer.ack` on the path that does not call faust's own `ack`.
- mode `Service._stopped` (read, consumer and fetcher): when the fetch loop ends, as Faust's.
- aiokafka `AIOKafkaConsumer._fetch_max_wait_ms` and `_fetch_min_bytes` (written before start):
  faust fixes 1.5 s and 1 byte (WORKER_FETCH_WAIT_MS, WORKER_FETCH_MIN_BYTES instead);
  `_subscription.subscription.assignment.state_value(tp)._position` (read): the next fetch
  offset, to tell whether a seek moved a partition since its records were drained.
- faust RocksDB `Store._db_for_partition` (called) and `_key_index` (written): read and write a
  record's partition outside a stream context (Faust would search every partition, and file
  the key under the current event's partition).
"""
