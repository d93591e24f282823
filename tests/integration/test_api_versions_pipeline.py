"""End to end on the real broker: the worker folds the oldest supported API version's traffic
(what `billstream simulate --api-version 2020-08-27` sends) into the accounts the newest
version's traffic predicts, so an endpoint's version never changes the state served."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import orjson

from billstream.routing import record_headers, routing_key
from billstream.simulate import versions
from billstream.simulate.catalog import SIMULATOR_PLAN_MAP
from billstream.simulate.expected import fold
from billstream.simulate.traffic import Delivery, Outcome, TrafficConfig, traffic
from billstream.topics import STRIPE_EVENTS, ensure_topics
from billstream.verify.readers import latest_per_key
from tests.integration.kafka import produce
from tests.integration.live_stack import eventually
from tests.integration.stripe_tools import WorkerChild
from tests.support.children import free_port
from tests.support.settings import SettingsFactory

DELIVERIES = 300
FIELDS = (
    "plan", "interval", "subscription_id", "subscription_status", "payment_state",
    "cancel_at_period_end", "pending_plan", "current_period_end", "deleted", "version",
)  # fmt: skip


def queued(api_version: str, start: int) -> list[Delivery]:
    """What ingest would have queued for an endpoint of `api_version` (same seed, same story)."""
    config = TrafficConfig(seed=2026, start=start, api_version=api_version, customers=20)
    accepted = (d for d in traffic(config) if d.kind in ("event", "duplicate"))
    return list(itertools.islice(accepted, DELIVERIES))


def fields(accounts: dict[str, Any]) -> dict[str, tuple[object, ...]]:
    return {key: tuple(account.get(name) for name in FIELDS) for key, account in accounts.items()}


async def test_the_oldest_versions_traffic_serves_the_newest_versions_state(
    make_settings: SettingsFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        billing_plan_map=SIMULATOR_PLAN_MAP,
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
    )
    await ensure_topics(settings)
    start = int(time.time())
    oldest = queued(versions.SUPPORTED[0], start)
    assert {orjson.loads(d.body)["api_version"] for d in oldest} == {"2020-08-27"}
    records = []
    for delivery in oldest:
        event = orjson.loads(delivery.body)
        headers = record_headers(event, int(time.time() * 1000))
        records.append((routing_key(event).encode(), delivery.body, headers))
    await produce(settings.kafka_bootstrap_servers, settings.topic(STRIPE_EVENTS), records)
    newest = queued(versions.NEWEST, start)
    expected = fields(fold([Outcome(d, "queued", 1) for d in newest], settings).accounts)
    assert len(expected) >= 20

    worker = WorkerChild(settings, tmp_path / "worker.log", {})
    worker.start()
    try:
        await worker.wait_ready()
        served: dict[str, tuple[object, ...]] = {}

        async def worker_served_the_newest_state() -> bool:
            nonlocal served
            latest, _ = await latest_per_key(settings, settings.topic("billing.account-state"))
            served = fields(latest)
            return served == expected

        try:
            await eventually(worker_served_the_newest_state, "the predicted accounts", 60)
        except AssertionError:
            assert served == expected, worker.log_tail()
    finally:
        worker.stop()
