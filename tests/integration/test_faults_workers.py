"""Two workers share the partitions; one is SIGKILLed mid-stream and the survivor takes its
partitions over from the changelog: the final state equals the uninterrupted run.

The single-worker kill/restart case is tests/integration/test_worker_crash.py; its oracle (the
pure reducer folding each customer's events in order) and helpers are reused here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from billstream.processors.config import ReducerConfig
from billstream.tables.codec import decode_state
from billstream.tables.tables import CUSTOMER_STATE_TABLE
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ensure_topics
from tests.integration.test_worker_crash import latest_by_key, oracle, produce_paced
from tests.support.children import free_port
from tests.support.factories import PLAN_MAP
from tests.support.settings import SettingsFactory
from tests.support.worker_process import (
    WorkerProcess,
    committed_offsets,
    end_offsets,
    read_all,
    wait_caught_up,
)
from tests.support.workload import build_workload

CUSTOMERS = 300  # ~3,000 records with retries and poison
KILL_AT = 0.35  # share of the records processed (by both workers) when one is killed


async def test_survivor_takes_over_a_killed_peers_partitions_from_the_changelog(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        worker_session_timeout=6,
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
    )
    doomed, survivor = (
        WorkerProcess(
            settings.model_copy(
                update={"worker_web_port": free_port(), "worker_data_dir": str(tmp_path / name)}
            ),
            tmp_path / f"{name}.log",
        )
        for name in ("doomed", "survivor")
    )
    workload = build_workload(CUSTOMERS, seed=31, prefix=f"cus_{settings.billstream_app_id[-6:]}_")
    records = workload.records
    source = settings.topic(STRIPE_EVENTS)
    group = settings.billstream_app_id
    await ensure_topics(settings)
    try:
        doomed.start()
        survivor.start()
        await asyncio.gather(doomed.wait_ready(), survivor.wait_ready())
        producing = asyncio.create_task(produce_paced(kafka_bootstrap, source, records))
        while True:
            counts = [
                await w.metric("billstream_event_lag_seconds_count") for w in (doomed, survivor)
            ]
            if sum(counts) >= KILL_AT * len(records):
                break
            await asyncio.sleep(0.05)
        doomed.kill()
        await producing
        assert all(counts), f"both workers must own partitions before the kill: {counts}"
        committed = await committed_offsets(kafka_bootstrap, group, source)
        end = await end_offsets(kafka_bootstrap, source)
        unfinished = {p for p, offset in end.items() if committed.get(p, 0) < offset}
        print(f"killed after {counts} of {len(records)}; unfinished partitions {unfinished}")
        assert unfinished, "the kill must leave records behind for the survivor"

        # Only the survivor is alive: it must process every partition to its end.
        await wait_caught_up(kafka_bootstrap, group, source, survivor)
        assert survivor.stop() == 0, survivor.log_tail()
    finally:
        survivor.stop()
        doomed.stop()

    expected = oracle(workload, ReducerConfig.from_settings(settings))
    outputs = await read_all(kafka_bootstrap, settings.topic(ACCOUNT_STATE))
    published = {k: orjson.loads(v) for k, v in latest_by_key(outputs).items()}
    assert published == {
        customer: view
        for customer, state in expected.items()
        if (view := state.account_view()) is not None
    }
    changelog = f"{group}-{CUSTOMER_STATE_TABLE}-changelog"
    stored = {
        k: decode_state(v)
        for k, v in latest_by_key(await read_all(kafka_bootstrap, changelog)).items()
    }
    assert stored == {customer: state.to_dict() for customer, state in expected.items()}
    # Outputs may repeat after the kill, but a (customer, version) always has one content.
    contents: dict[tuple[bytes, int], bytes] = {}
    for record in outputs:
        version = orjson.loads(record.value)["version"]
        assert contents.setdefault((record.key, version), record.value) == record.value
    dead = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS_DLQ))
    poison = {
        (k, v) for k, v, headers in records if b"evt_broken" in dict(headers)["stripe-event-id"]
    }
    assert {(r.key, r.value) for r in dead} == poison
