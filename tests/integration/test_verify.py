"""rebuild/verify on the real broker: a healthy pipeline shows no difference; a corrupted read-model
row shows exactly that one.

A simulated stream (duplicates, reordering) goes through the real worker subprocess into
billing.account-state and through the api's consumer into a SQLite read model served over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application
from pytest_aiohttp import AiohttpClient

from billstream.api.app import create_app
from billstream.api.consumer import StateConsumer
from billstream.api.metrics import ApiMetrics
from billstream.api.service import read_model_service
from billstream.api.store import Store
from billstream.routing import record_headers, routing_key
from billstream.settings import Settings
from billstream.simulate.catalog import SIMULATOR_PLAN_MAP
from billstream.simulate.traffic import TrafficConfig, traffic
from billstream.topics import STRIPE_EVENTS, ensure_topics
from billstream.verify import cli
from billstream.verify.readers import latest_per_key
from tests.integration.kafka import produce
from tests.integration.stripe_tools import WorkerChild
from tests.support.children import bearer, free_port
from tests.support.settings import SettingsFactory

Client = TestClient[Any, Any]
DELIVERIES = 300
SETTLE_SECONDS = 90.0


async def publish_simulated_stream(settings: Settings) -> None:
    """What ingest would have queued: realistic deliveries, keyed and headed the same way."""
    config = TrafficConfig(seed=2024, start=int(time.time()), customers=25)
    queued = (d for d in traffic(config) if d.kind in ("event", "duplicate"))
    records = []
    for delivery in itertools.islice(queued, DELIVERIES):
        event = orjson.loads(delivery.body)
        headers = record_headers(event, int(time.time() * 1000))
        records.append((routing_key(event).encode(), delivery.body, headers))
    await produce(settings.kafka_bootstrap_servers, settings.topic(STRIPE_EVENTS), records)


def api_app(settings: Settings, database: Path) -> Application:
    """The api exactly as `billstream api` wires it, on its own SQLite file."""
    metrics = ApiMetrics.create()
    store = Store(f"sqlite:///{database}")
    writer = ThreadPoolExecutor(1)
    consumer = StateConsumer(settings, store, metrics, writer)
    app = create_app(settings, store, metrics=metrics, consumer=consumer)
    app.cleanup_ctx.append(read_model_service(settings, store, consumer))

    async def stop_writer(_: Application) -> None:
        writer.shutdown(wait=False)

    app.on_cleanup.append(stop_writer)
    return app


def command(name: str, **options: Any) -> argparse.Namespace:
    values = {"api_url": None, "output": None, "output_topic": None, "idle_timeout": 30.0}
    return argparse.Namespace(command=name, **{**values, **options})


async def verify_until_settled(
    settings: Settings, api_url: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """verify, repeated while the api's consumer is still catching up with the worker."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        status = await cli.execute(settings, command("verify", api_url=api_url))
        out = capsys.readouterr().out
        if status == 0 or time.monotonic() > deadline:
            return status, out
        await asyncio.sleep(1.0)


async def test_verify_reports_nothing_then_exactly_the_corrupted_row(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        billing_plan_map=SIMULATOR_PLAN_MAP,
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
    )
    await ensure_topics(settings)
    await publish_simulated_stream(settings)
    worker = WorkerChild(settings, tmp_path / "worker.log", {})
    worker.start()
    try:
        await worker.wait_ready()
        database = tmp_path / "read.db"
        client = await aiohttp_client(api_app(settings, database), headers=bearer(settings))
        api_url = str(client.make_url("")).rstrip("/")

        rebuilt_file = tmp_path / "rebuilt.jsonl"
        rebuild = command("rebuild", output=rebuilt_file, output_topic="rebuilt.account-state")
        assert await cli.execute(settings, rebuild) == 0
        rebuilt = {
            a["customer_id"]: a for a in map(orjson.loads, rebuilt_file.read_bytes().splitlines())
        }
        published, _ = await latest_per_key(settings, settings.topic("rebuilt.account-state"))
        assert published == rebuilt
        assert len(rebuilt) >= 25  # 25 stories at a time, a new one when one ends

        status, out = await verify_until_settled(settings, api_url, capsys)
        assert status == 0, out
        assert f"{api_url}: {len(rebuilt)} accounts, 0 differences" in out
        state_topic = settings.topic("billing.account-state")
        assert f"{state_topic}: {len(rebuilt)} accounts, 0 differences" in out

        victim = sorted(c for c, a in rebuilt.items() if a["plan"] != "BUSINESS")[0]
        with sqlite3.connect(database) as db:
            db.execute("UPDATE accounts SET plan = 'BUSINESS' WHERE customer_id = ?", (victim,))
        capsys.readouterr()

        assert await cli.execute(settings, command("verify", api_url=api_url)) == 1
        out = capsys.readouterr().out
        expected = (
            f'{api_url}: {victim} plan: rebuilt "{rebuilt[victim]["plan"]}", served "BUSINESS"'
        )
        differences = [line for line in out.splitlines() if not line.startswith("billstream ")]
        assert differences == [expected]
        assert f"{api_url}: {len(rebuilt)} accounts, 1 differences" in out
        assert f"{state_topic}: {len(rebuilt)} accounts, 0 differences" in out  # topic intact
    finally:
        worker.stop()
