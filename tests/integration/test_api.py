"""The api end to end on the real broker: account-state records produced → served over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from aiohttp.web import Application
from aiokafka.admin import AIOKafkaAdminClient
from pytest_aiohttp import AiohttpClient

from billstream.api.main import build_app
from billstream.api.metrics import ApiMetrics
from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, contract_topics, ensure_topics
from tests.integration.kafka import produce
from tests.support.account_state import state_value
from tests.support.children import TEST_API_TOKEN
from tests.support.settings import SettingsFactory

Client = TestClient[Any, Any]
DEADLINE_SECONDS = 45.0
AUTH = {"Authorization": f"Bearer {TEST_API_TOKEN}"}


def api_app(settings: Settings, database: Path) -> tuple[Application, ApiMetrics]:
    """The app exactly as `billstream api` builds it."""
    metrics = ApiMetrics.create()
    app = build_app(settings.model_copy(update={"database_url": f"sqlite:///{database}"}), metrics)
    return app, metrics


async def produce_states(settings: Settings, *values: dict[str, Any] | bytes) -> None:
    topic = settings.topic(ACCOUNT_STATE)
    await ensure_topics(settings, [s for s in contract_topics(settings) if s.name == topic])
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
    for value in values:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        key = b"cus_1" if isinstance(value, bytes) else value["customer_id"].encode()
        records.append((key, raw, []))
    await produce(settings.kafka_bootstrap_servers, topic, records)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def account_version(client: Client, customer_id: str) -> int | None:
    response = await client.get(f"/accounts/{customer_id}")
    if response.status in (404, 503):  # 503 until the migration at start-up has run
        return None
    assert response.status == 200
    version: int = (await response.json())["version"]
    return version


async def committed(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(f"{settings.billstream_app_id}-api")
    finally:
        await admin.close()
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


async def test_state_produced_to_the_broker_is_served(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await produce_states(
        settings,
        state_value("cus_1", 1, plan="FREE"),
        b"{not json",
        state_value("cus_1", 2, plan="PRO", updated_by_event_type="invoice.paid"),
        state_value("cus_2", 1),
    )
    app, metrics = api_app(settings, tmp_path / "read.db")
    client = await aiohttp_client(app, headers=AUTH)

    async def served() -> bool:
        return (
            await account_version(client, "cus_1") == 2
            and await account_version(client, "cus_2") == 1
        )

    await eventually(served, "both accounts to be served")
    transitions = await (await client.get("/accounts/cus_1/transitions")).json()
    assert [(t["version"], t["event_type"]) for t in transitions["items"]] == [
        (1, "customer.subscription.updated"),
        (2, "invoice.paid"),
    ]
    malformed = metrics.registry.get_sample_value(
        "billstream_api_state_messages_total", {"result": "malformed"}
    )
    assert malformed == 1
    assert (await client.get("/readyz")).status == 200

    async def all_committed() -> bool:
        return await committed(settings) == 4

    await eventually(all_committed, "offsets of all 4 records to be committed")


async def test_restart_ignores_replays_and_a_new_read_model_reseeds(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap)
    await produce_states(
        settings, state_value("cus_1", 1), state_value("cus_1", 3, plan="BUSINESS")
    )
    first_app, _ = api_app(settings, tmp_path / "read.db")
    first = await aiohttp_client(first_app, headers=AUTH)

    async def at_version_3() -> bool:
        return await account_version(first, "cus_1") == 3

    await eventually(at_version_3, "version 3")
    await first.close()

    # A late, older version: the restarted api (same group, same database) must ignore it.
    await produce_states(settings, state_value("cus_1", 2, plan="FREE"), state_value("cus_9", 1))
    again_app, again_metrics = api_app(settings, tmp_path / "read.db")
    again = await aiohttp_client(again_app, headers=AUTH)

    async def caught_up() -> bool:
        return await account_version(again, "cus_9") == 1

    await eventually(caught_up, "the restarted api to catch up")
    body = await (await again.get("/accounts/cus_1")).json()
    assert (body["version"], body["plan"]) == (3, "BUSINESS")
    assert (
        again_metrics.registry.get_sample_value(
            "billstream_api_state_messages_total", {"result": "stale"}
        )
        == 1
    )
    await again.close()

    # Re-seeding: an empty database under a new group reads the topic from the start.
    reseed_settings = settings.model_copy(
        update={"billstream_app_id": settings.billstream_app_id + "-2"}
    )
    fresh_app, _ = api_app(reseed_settings, tmp_path / "fresh.db")
    fresh = await aiohttp_client(fresh_app, headers=AUTH)

    async def reseeded() -> bool:
        return (
            await account_version(fresh, "cus_1") == 3
            and await account_version(fresh, "cus_9") == 1
        )

    await eventually(reseeded, "the fresh read model to re-seed")
