"""End to end: Stripe-signed webhooks → ingest → real broker → worker → billing.account-state.

The published states are read back twice, with aiokafka and with kcat (librdkafka, an
independent consumer), and must equal the pure reducer folding the same events. The worker
runs as `billstream worker` with stray Faust variables in its environment, which it ignores.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.ingest.app import create_app
from billstream.processors.config import ReducerConfig
from billstream.processors.effects import EpisodeChanged
from billstream.processors.reducer import apply
from billstream.topics import ACCOUNT_STATE, INVOICE_EPISODES, ensure_topics
from tests.integration.ingest_support import post_signed, wait_ready
from tests.support.children import free_port
from tests.support.factories import PLAN_MAP
from tests.support.settings import SettingsFactory
from tests.support.worker_process import WorkerProcess, read_all
from tests.support.workload import build_workload

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
# Faust would obey these unprefixed variables if it read the environment (it must not).
STRAY_FAUST_ENV = {
    "BROKER_URL": "kafka://127.0.0.1:1",
    "PROCESSING_GUARANTEE": "exactly_once",
    "APP_ENV_PREFIX": "",
    "STORE": "rocksdb://",
}
CONTRACT_METRICS = (
    "stripe_webhook_duplicate_total", "stripe_checkout_completed_total",
    "stripe_subscription_event_total", "stripe_subscription_plan_changed_total",
    "stripe_subscription_unknown_price_total", "stripe_invoice_paid_total",
    "stripe_invoice_failed_total", "stripe_invoice_action_required_total",
    "stripe_dunning_entered_total", "stripe_dunning_recovered_total", "stripe_dunning_lost_total",
    "stripe_dunning_recovery_seconds", "stripe_sca_entered_total", "stripe_sca_completed_total",
    "stripe_sca_lost_total", "stripe_sca_completion_seconds",
    "stripe_subscription_downgrade_scheduled_total",
    "stripe_subscription_downgrade_applied_total", "stripe_subscription_reconcile_run_total",
    "stripe_subscription_reconcile_error_total", "billstream_dlq_total",
    "billstream_event_lag_seconds",
)  # fmt: skip


def kcat_latest(bootstrap: str, topic: str) -> dict[str, Any]:
    """Latest value per key, read by kcat from the beginning to the current end."""
    out = subprocess.run(
        [KCAT, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%k\t%s\n"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    latest: dict[str, Any] = {}
    for line in out.decode().splitlines():
        key, value = line.split("\t", 1)
        latest[key] = orjson.loads(value)
    return latest


async def wait_processed(worker: WorkerProcess, count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while await worker.metric("billstream_event_lag_seconds_count") < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"worker processed fewer than {count}:\n{worker.log_tail()}")
        await asyncio.sleep(0.2)


async def test_signed_webhooks_become_account_states_read_back_by_aiokafka_and_kcat(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
    )
    workload = build_workload(40, seed=23, prefix=f"cus_{settings.billstream_app_id[-6:]}_")
    bodies = [value for _, value, _ in workload.records if b'"object":"event"' in value]
    await ensure_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log", extra_env=STRAY_FAUST_ENV)
    worker.start()
    try:
        client = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
        await wait_ready(client)
        await worker.wait_ready()
        for body in bodies:
            assert await post_signed(client, body) == (200, "queued")
        assert await post_signed(client, b"{not json") == (400, "invalid_payload")
        await wait_processed(worker, len(bodies))

        assert (await worker.get("/healthz"))[0] == 200
        _, metrics = await worker.get("/metrics")
        missing = [name for name in CONTRACT_METRICS if f"# TYPE {name} " not in metrics]
        assert not missing, f"metrics missing from the worker's /metrics: {missing}"
        assert await worker.metric("stripe_webhook_duplicate_total") == workload.duplicates > 0
        assert await worker.metric("billstream_dlq_total") == 0
        # Every record handled: nothing left on the worker's partitions (checked after a
        # handful of records were produced and handled, so the gauge had partitions to read).
        assert "billstream_worker_consumer_lag_messages 0.0" in metrics
    finally:
        worker.stop()

    config = ReducerConfig.from_settings(settings)
    expected: dict[str, Any] = {}
    episodes: dict[str, Any] = {}
    for customer, events in workload.events.items():
        state = None
        for event in events:
            state, effects = apply(state, event, config)
            for effect in effects:
                if isinstance(effect, EpisodeChanged):
                    record = effect.episode
                    episodes[f"{record['invoice_id']}:{record['kind']}"] = record
        if state is not None and (view := state.account_view()) is not None:
            expected[customer] = view
    # Every episode change reached billing.invoice-episodes: the latest per key is the fold's.
    assert episodes, "the workload has dunning or SCA episodes"
    published = await read_all(kafka_bootstrap, settings.topic(INVOICE_EPISODES))
    assert {r.key.decode(): orjson.loads(r.value) for r in published} == episodes
    topic = settings.topic(ACCOUNT_STATE)
    by_aiokafka = {
        r.key.decode(): orjson.loads(r.value) for r in await read_all(kafka_bootstrap, topic)
    }
    assert by_aiokafka == expected
    assert kcat_latest(kafka_bootstrap, topic) == expected
