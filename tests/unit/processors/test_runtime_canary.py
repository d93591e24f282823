"""Canary: every private faust / mode / aiokafka / RocksDB-store name processors/runtime uses.

Written for faust-streaming 0.15.3, mode-streaming 0.7.1 and aiokafka 0.14.0 (constraints.txt).
An upgrade fails this one test with one line naming what changed; re-read the upstream code
behind each name listed in processors/runtime/__init__.py, then update WRITTEN_FOR.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.subscription_state import Assignment, TopicPartitionState
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import tuples as faust_tuples

from billstream.processors.runtime.app import BillstreamTransport, create_faust_app
from billstream.processors.runtime.direct import DirectConsumer
from billstream.processors.runtime.producer import LibrdkafkaProducer
from billstream.tables.tables import customer_state_table
from tests.support.settings import SettingsFactory

WRITTEN_FOR = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}
CONSTRAINTS = Path(__file__).resolve().parents[3] / "constraints.txt"

# (class, method) -> the parameters our override or call passes.
SIGNATURES: dict[tuple[type[Any], str], list[str]] = {
    (faust_consumer.Consumer, "_new_offset"): ["self", "tp"],
    (faust_consumer.Consumer, "_wait_next_records"): ["self", "timeout"],
    (faust_consumer.Consumer, "_drain_messages"): ["self", "fetcher"],
    (faust_consumer.Consumer, "_add_gap"): ["self", "tp", "offset_from", "offset_to"],
    (faust_consumer.Consumer, "ack"): ["self", "message"],
    (faust_aiokafka.Consumer, "_new_consumer_thread"): ["self"],
    (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"): ["self", "transport"],
    (faust_aiokafka.AIOKafkaConsumerThread, "seek"): ["self", "partition", "offset"],
    (faust_aiokafka.Transport, "create_consumer"): ["self", "callback", "kwargs"],
    (faust_aiokafka.Transport, "create_producer"): ["self", "kwargs"],
    (RocksDBStore, "_db_for_partition"): ["self", "partition"],
    (Assignment, "state_value"): ["self", "tp"],
}
CONSUMER_ATTRIBUTES = [
    "_acked",
    "_committed_offset",
    "_gap",
    "_unacked_messages",
    "_read_offset",
    "_n_acked",
    "_commit_every",
    "_thread",
    "_stopped",  # mode.Service
]


def pinned(name: str) -> str | None:
    found = re.search(rf"^{re.escape(name)}==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    return found.group(1) if found else None


def missing(owner: object, names: list[str], label: str) -> list[str]:
    return [f"{label}.{name} is gone" for name in names if not hasattr(owner, name)]


async def test_the_private_names_the_runtime_uses_exist_in_the_installed_versions(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    problems = []
    for package, written_for in WRITTEN_FOR.items():
        installed, pin = version(package), pinned(package)
        if installed != written_for or pin != written_for:
            problems.append(
                f"written for {package} {written_for}: installed {installed}, pin {pin}"
            )

    for (owner, name), expected in SIGNATURES.items():
        method = getattr(owner, name, None)
        if method is None:
            problems.append(f"{owner.__qualname__}.{name} is gone")
        elif (parameters := list(inspect.signature(method).parameters)) != expected:
            problems.append(f"{owner.__qualname__}.{name}{tuple(parameters)}, not {expected}")
    transport = getattr(faust.App, "transport", None)
    if not isinstance(transport, property) or transport.fset is None:
        problems.append("faust.App.transport is no longer a settable property")
    if not hasattr(getattr(faust_tuples, "ack_lock", None), "__enter__"):
        problems.append("faust.types.tuples.ack_lock is gone (GuardedConsumer.ack takes it)")

    settings = make_settings(worker_store="rocksdb://", worker_data_dir=str(tmp_path))
    app = create_faust_app(settings)
    app.loop = asyncio.get_running_loop()
    if not isinstance(app.transport, BillstreamTransport):
        problems.append("the app no longer keeps the transport it was given")
    consumer, producer = app.consumer, app.producer
    if type(consumer) is not DirectConsumer or type(producer) is not LibrdkafkaProducer:
        problems.append(f"the app built {type(consumer)} / {type(producer)}, not ours")
    problems += missing(consumer, CONSUMER_ATTRIBUTES, "Consumer")
    problems += missing(getattr(consumer, "_thread", None), ["_consumer"], "AIOKafkaConsumerThread")

    kafka_consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
    fetch_attributes = ["_fetch_max_wait_ms", "_fetch_min_bytes", "_subscription"]
    problems += missing(kafka_consumer, fetch_attributes, "AIOKafkaConsumer")
    problems += missing(
        getattr(kafka_consumer, "_subscription", None),
        ["subscription"],
        "AIOKafkaConsumer._subscription",
    )
    problems += missing(TopicPartitionState(None), ["_position"], "TopicPartitionState")

    store = customer_state_table(app, settings.billstream_topic_partitions).data
    problems += missing(store, ["_db_for_partition", "_key_index"], "RocksDB Store")

    assert not problems, "processors/runtime's faust/mode/aiokafka internals: " + "; ".join(
        problems
    )
