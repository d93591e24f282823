"""Crash safety: SIGKILL the worker mid-stream, restart it, and get the uninterrupted result.

The oracle is the pure reducer folding each customer's events in order: the account state the
worker publishes (latest per key on billing.account-state) and the aggregate it persists
(latest per key on the table's changelog) must equal it exactly, so no event's effect was lost
or applied twice (a double application would bump `version` and differ from the oracle).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import apply
from billstream.tables.codec import decode_state
from billstream.tables.state import CustomerState
from billstream.tables.tables import CUSTOMER_STATE_TABLE
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ensure_topics
from tests.support.children import free_port
from tests.support.factories import PLAN_MAP
from tests.support.settings import SettingsFactory
from tests.support.worker_process import (
    WorkerProcess,
    committed_offsets,
    read_all,
    wait_caught_up,
)
from tests.support.workload import Record, Workload, build_workload

CUSTOMERS = 400  # ~4,900 records with retries and poison
CHUNK = 150
PACE = 0.25  # seconds between chunks: the stream lasts ~8 s, past the worker's first commits
KILL_AT = 0.4  # fraction of the records processed (and some committed) when the worker is killed


def oracle(workload: Workload, config: ReducerConfig) -> dict[str, CustomerState]:
    """The uninterrupted run: each customer's events folded in order by the pure reducer."""
    states: dict[str, CustomerState] = {}
    for customer, events in workload.events.items():
        state: CustomerState | None = None
        for event in events:
            state, _ = apply(state, event, config)
        assert state is not None
        states[customer] = state
    return states


async def produce_paced(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Publish in small chunks, so the worker is busy consuming when it is killed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for start in range(0, len(records), CHUNK):
            futures = [
                await producer.send(topic, key=key, value=value, headers=headers)
                for key, value, headers in records[start : start + CHUNK]
            ]
            await asyncio.gather(*futures)
            await asyncio.sleep(PACE)
    finally:
        await producer.stop()


async def wait_processed(worker: WorkerProcess, at_least: float, timeout: float = 60.0) -> float:
    """Poll the worker's processed-records count until it reaches `at_least`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processed = await worker.metric("billstream_event_lag_seconds_count")
        if processed >= at_least:
            return processed
        await asyncio.sleep(0.02)
    raise AssertionError(f"worker processed fewer than {at_least} records:\n{worker.log_tail()}")


async def wait_committed(bootstrap: str, group: str, topic: str, timeout: float = 30.0) -> None:
    """Wait for the worker's first offset commit, so the restart resumes mid-stream."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            offset > 0 for offset in (await committed_offsets(bootstrap, group, topic)).values()
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no offset of {topic} committed within {timeout:.0f} s")


def latest_by_key(records: list[Any]) -> dict[str, bytes]:
    return {record.key.decode(): record.value for record in records}


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_sigkill_mid_stream_then_restart_equals_the_uninterrupted_run(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path, store: str
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        worker_web_port=free_port(),
        worker_store=store,
        worker_data_dir=str(tmp_path / "worker"),
        worker_session_timeout=6,
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
    )
    workload = build_workload(CUSTOMERS, seed=11, prefix=f"cus_{settings.billstream_app_id[-6:]}_")
    records = workload.records
    source = settings.topic(STRIPE_EVENTS)
    await ensure_topics(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        await worker.wait_ready()
        producing = asyncio.create_task(produce_paced(kafka_bootstrap, source, records))
        await wait_processed(worker, KILL_AT * len(records))
        await wait_committed(kafka_bootstrap, settings.billstream_app_id, source)
        processed = await worker.metric("billstream_event_lag_seconds_count")
        worker.kill()
        committed = await committed_offsets(kafka_bootstrap, settings.billstream_app_id, source)
        await producing  # the rest of the stream arrives while no worker runs
        assert processed < len(records), "the kill must land mid-stream"
        print(f"killed after {processed:.0f} of {len(records)}; committed {committed}")

        worker.start()
        await worker.wait_ready()
        await wait_caught_up(kafka_bootstrap, settings.billstream_app_id, source, worker)
        assert worker.stop() == 0, worker.log_tail()
    finally:
        worker.stop()

    expected = oracle(workload, ReducerConfig.from_settings(settings))
    outputs = await read_all(kafka_bootstrap, settings.topic(ACCOUNT_STATE))
    published = {k: orjson.loads(v) for k, v in latest_by_key(outputs).items()}
    views = {c: view for c, state in expected.items() if (view := state.account_view()) is not None}
    wrong = {c: (published.get(c), views.get(c)) for c in set(views) | set(published)}
    wrong = {c: pair for c, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, "published (left) vs uninterrupted run (right):\n" + "\n".join(
        f"{c}: {a}\n{' ' * len(c)}  {b}" for c, (a, b) in sorted(wrong.items())
    )

    changelog = f"{settings.billstream_app_id}-{CUSTOMER_STATE_TABLE}-changelog"
    stored = {
        k: decode_state(v)
        for k, v in latest_by_key(await read_all(kafka_bootstrap, changelog)).items()
    }
    assert stored == {customer: state.to_dict() for customer, state in expected.items()}

    # After the kill the output may be ahead of the changelog, so the replay can re-emit an
    # older version; but a version always has one content, and one older than the newest
    # emitted for that customer is always a repeat, never a new change.
    contents: dict[tuple[str, int], bytes] = {}
    newest: dict[str, int] = {}
    for record in outputs:
        key, version = record.key.decode(), orjson.loads(record.value)["version"]
        if version < newest.get(key, 0):
            assert (key, version) in contents, f"{key}: new content for old version {version}"
        assert contents.setdefault((key, version), record.value) == record.value
        newest[key] = max(newest.get(key, 0), version)

    dead = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS_DLQ))
    poison = {
        (key, value)
        for key, value, headers in records
        if b"evt_broken" in dict(headers).get("stripe-event-id", b"")
    }
    assert {(r.key, r.value) for r in dead} == poison
    assert len(poison) == workload.poison > 0
    reasons = {dict(r.headers)["error"] for r in dead}
    assert reasons == {b"not_json", b"missing_field", b"not_object"}
