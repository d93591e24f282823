"""TableWriter: writes outside any Faust stream context land in the record's partition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from billstream.processors.runtime.app import create_faust_app
from billstream.processors.runtime.table_writer import PERSIST_OFFSET_EVERY, TableWriter
from billstream.tables.tables import ROCKSDB_OPTIONS, customer_state_table
from tests.support.settings import SettingsFactory


class FakeProducer:
    """Acknowledges each record at once, at offsets 41, 42, ..."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []
        self.listeners: dict[str, Callable[[int, int], None]] = {}
        self.next_offset = 41

    def on_delivery(self, topic: str, listener: Callable[[int, int], None]) -> None:
        self.listeners[topic] = listener

    async def produce(
        self, topic: str, key: bytes, value: bytes, *, partition: int | None = None
    ) -> None:
        self.sent.append((topic, key, value, partition))
        if topic in self.listeners:
            self.listeners[topic](partition or 0, self.next_offset)
        self.next_offset += 1


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_a_write_is_stored_under_its_partition_and_sent_to_that_changelog_partition(
    make_settings: SettingsFactory, tmp_path: Path, store: str
) -> None:
    settings = make_settings(worker_store=store, worker_data_dir=str(tmp_path))
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    app.producer = FakeProducer()  # type: ignore[assignment]
    table = customer_state_table(app, settings.billstream_topic_partitions)
    writer = TableWriter(table)

    await writer.set(b"cus_1", b"state", 2)  # no stream event is being processed here

    assert writer.get(b"cus_1", 2) == b"state"
    assert writer.get(b"cus_2", 2) is None
    assert app.producer.sent == [(writer.changelog, b"cus_1", b"state", 2)]  # type: ignore[attr-defined]
    if isinstance(table.data, RocksDBStore):  # the durable store also keeps the changelog offset
        assert table.data._db_for_partition(2)[b"cus_1"] == b"state"
        assert table.data.persisted_offset(TP(writer.changelog, 2)) == 41


async def test_the_rocksdb_store_is_opened_with_bounded_memory(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(worker_store="rocksdb://", worker_data_dir=str(tmp_path))
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    store = customer_state_table(app, settings.billstream_topic_partitions).data
    assert isinstance(store, RocksDBStore)

    options = store.rocksdb_options
    for name, value in ROCKSDB_OPTIONS.items():
        assert getattr(options, name) == value, name  # Faust's defaults: 2 GiB cache per partition


async def test_the_changelog_offset_is_persisted_at_most_once_a_second_per_partition(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(worker_store="rocksdb://", worker_data_dir=str(tmp_path))
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    app.producer = FakeProducer()  # type: ignore[assignment]
    table = customer_state_table(app, settings.billstream_topic_partitions)
    writer = TableWriter(table)
    clock = [1000.0]
    monkeypatch.setattr(
        "billstream.processors.runtime.table_writer.time.monotonic", lambda: clock[0]
    )

    await writer.set(b"cus_1", b"v1", 2)  # offset 41
    await writer.set(b"cus_1", b"v2", 2)  # offset 42, within the second: not persisted
    await writer.set(b"cus_3", b"v1", 3)  # offset 43, another partition: persisted
    store = table.data
    assert isinstance(store, RocksDBStore)
    persisted = store.persisted_offset
    assert (persisted(TP(writer.changelog, 2)), persisted(TP(writer.changelog, 3))) == (41, 43)

    clock[0] += PERSIST_OFFSET_EVERY
    await writer.set(b"cus_1", b"v3", 2)  # offset 44

    assert persisted(TP(writer.changelog, 2)) == 44
    assert writer.get(b"cus_1", 2) == b"v3"  # every value is stored; only the offset waits
