"""A steady account-state stream shaped like the worker's output, and read-model checks.

The worker emits each change once with `version + 1`, but after a crash it may re-emit a
version (same content) or briefly an older one (docs/processing-guarantees.md); the stream
does both, so the api's version guard is exercised while a fault hits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, contract_topics, ensure_topics
from tests.support.account_state import state_value
from tests.support.services import Service, api_accounts
from tests.support.worker_process import read_all

PLANS = ("FREE", "PRO", "BUSINESS")
PAYMENT_STATES = ("ok", "past_due", "requires_action")


def account(customer: str, version: int) -> dict[str, Any]:
    """The one content of (customer, version): a re-emission is byte-identical."""
    salt = sum(customer.encode())
    return state_value(
        customer,
        version,
        plan=PLANS[(version + salt) % 3],
        payment_state=PAYMENT_STATES[(version * 7 + salt) % 3],
    )


def state_records(customers: int, versions: int, prefix: str, seed: int) -> list[dict[str, Any]]:
    """Round after round, every customer's next version; ~3 % re-emitted, ~3 % followed by a
    replay of the previous version. Each customer's last record is its newest version."""
    rng = random.Random(seed)
    ids = [f"{prefix}{n:05d}" for n in range(customers)]
    out: list[dict[str, Any]] = []
    for version in range(1, versions + 1):
        for customer in ids:
            out.append(account(customer, version))
            roll = rng.random()
            if roll < 0.03:
                out.append(account(customer, version))
            elif roll < 0.06 and 1 < version < versions:
                out.append(account(customer, version - 1))
    return out


async def produce_steadily(settings: Settings, values: list[dict[str, Any]], rate: float) -> None:
    """Publish `values` keyed by customer at about `rate` records per second."""
    topic = settings.topic(ACCOUNT_STATE)
    await ensure_topics(settings, [s for s in contract_topics(settings) if s.name == topic])
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    chunk = max(1, int(rate / 10))
    await producer.start()
    try:
        for start in range(0, len(values), chunk):
            futures = [
                await producer.send(topic, key=v["customer_id"].encode(), value=orjson.dumps(v))
                for v in values[start : start + chunk]
            ]
            await asyncio.gather(*futures, asyncio.sleep(0.1))
    finally:
        await producer.stop()


@dataclass
class VersionWatch:
    """Reads a few accounts over and over while faults happen; records every version served."""

    api: Service
    customers: list[str]
    seen: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    unavailable: int = 0  # 503s and refused connections while the api or its database was down

    async def run(self) -> None:
        while True:
            for customer in self.customers:
                try:
                    status, body = await self.api.get(f"/accounts/{customer}")
                except (aiohttp.ClientError, TimeoutError, AssertionError):
                    status, body = 0, None  # AssertionError: the process is being restarted
                if status == 200:
                    self.seen[customer].append(body["version"])
                elif status in (0, 503):
                    self.unavailable += 1
                else:
                    assert status == 404, (status, body)
            await asyncio.sleep(0.05)

    def regressions(self) -> dict[str, list[int]]:
        return {c: v for c, v in self.seen.items() if v != sorted(v)}


@contextlib.asynccontextmanager
async def watching(watch: VersionWatch) -> Any:
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def topic_truth(settings: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, set[int]]]:
    """The latest value per key of billing.account-state, and every version present per key."""
    latest: dict[str, dict[str, Any]] = {}
    versions: dict[str, set[int]] = defaultdict(set)
    for record in await read_all(settings.kafka_bootstrap_servers, settings.topic(ACCOUNT_STATE)):
        value = orjson.loads(record.value)
        latest[record.key.decode()] = value
        versions[record.key.decode()].add(value["version"])
    return latest, versions


async def wait_caught_up(api: Service, latest: dict[str, dict[str, Any]], timeout: float) -> None:
    """Until the api serves every key at its latest version (bounded; backoff is up to 30 s)."""
    want = {customer: value["version"] for customer, value in latest.items()}
    deadline = asyncio.get_running_loop().time() + timeout
    served: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            status, _ = await api.get("/readyz")
            if status == 200:
                served = {c: a["version"] for c, a in (await api_accounts(api)).items()}
                if served == want:
                    return
        await asyncio.sleep(0.5)
    behind = {c: (served.get(c), v) for c, v in want.items() if served.get(c) != v}
    raise AssertionError(
        f"api behind on {len(behind)} accounts, e.g. {list(behind.items())[:3]}:\n{api.log_tail()}"
    )


async def all_transitions(api: Service, customer: str) -> list[dict[str, Any]]:
    """Every page of the customer's transitions, following `next`."""
    items: list[dict[str, Any]] = []
    page = f"/accounts/{customer}/transitions?limit=500"
    while True:
        status, body = await api.get(page)
        assert status == 200, (status, body)
        items.extend(body["items"])
        if body["next"] is None:
            return items
        page = f"/accounts/{customer}/transitions?limit=500&after={body['next']}"


async def assert_read_model_equals_topic(api: Service, settings: Settings) -> None:
    """Served state = latest value per key; transitions = exactly the versions in the topic,
    each linked to the one before (no gap, no repeat, no regression)."""
    latest, versions = await topic_truth(settings)
    served = await api_accounts(api)
    assert set(served) == set(latest)
    for customer, state in served.items():
        # Fields a record predates (e.g. `features`) are served with their default.
        sent = latest[customer]
        assert {k: v for k, v in state.items() if k in sent} == {
            k: sent[k] for k in state if k in sent
        }
        assert state.get("features", []) == sent.get("features", []), customer
        transitions = await all_transitions(api, customer)
        chain = [(t["previous_version"], t["version"]) for t in transitions]
        present = sorted(versions[customer])
        assert chain == list(zip([None, *present[:-1]], present, strict=True)), customer
