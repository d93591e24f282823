"""`make bench-api`: read API and read-model catch-up, each as a ratio to an in-run baseline.

- GET /accounts/{id} (random ids, 100k accounts stored): requests/s and p99 by wrk, vs a bare
  aiohttp handler serving the same body shape from memory.
- catch-up: account-state records applied per second, (a) Store.apply alone and (b) end to end
  from the real broker through StateConsumer, vs a bare bulk INSERT of the same rows (same
  database, same batch size, one transaction per batch).
SQLite (file, WAL, synchronous=FULL) and PostgreSQL 15 (a throw-away cluster: fsync off, so the
absolute figures flatter it; the ratios compare like with like). Results: bench/results/api.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Column, MetaData, Table, create_engine, insert

from bench.api_serve import AUTH_HEADER, BENCH_TOKEN
from billstream.api.consumer import Batch, StateConsumer
from billstream.api.metrics import ApiMetrics
from billstream.api.models import accounts
from billstream.api.state import AccountStateMessage
from billstream.api.store import Store, engine_url
from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, contract_topics, ensure_topics
from tests.support.postgres import create_database, temporary_cluster

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = int(os.environ.get("BENCH_API_ACCOUNTS", "100000"))
CATCHUP = int(os.environ.get("BENCH_API_CATCHUP", "50000"))
BATCH = 2000
WRK_SECONDS = int(os.environ.get("BENCH_API_WRK_SECONDS", "8"))
WRK_CONNECTIONS = 32
WRK_SCRIPT = """
math.randomseed(42)
request = function()
  return wrk.format(nil, string.format("/accounts/cus_%06d", math.random(0, {n} - 1)))
end
"""


def states(count: int, version: int = 1) -> list[AccountStateMessage]:
    return [
        AccountStateMessage(
            customer_id=f"cus_{n:06d}",
            plan=("FREE", "PRO", "BUSINESS")[n % 3],
            interval="month",
            subscription_id=f"sub_{n:06d}",
            subscription_status="active",
            payment_state=("ok", "ok", "past_due")[n % 3],
            current_period_end=1767225600,
            version=version,
            updated_by_event=f"evt_{n:06d}_{version}",
            updated_by_event_type="customer.subscription.updated",
            updated_at=1767225600 + n,
        )
        for n in range(count)
    ]


def batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def bare_insert_rate(url: str, rows: list[dict[str, Any]]) -> float:
    """Rows/s of a plain INSERT into a copy of `accounts` (no upsert, no history, no checks)."""
    engine = create_engine(engine_url(url))
    columns = (Column(c.name, c.type, primary_key=c.primary_key) for c in accounts.c)
    table = Table(f"bench_bare_{uuid.uuid4().hex[:6]}", MetaData(), *columns)
    table.create(engine)
    try:
        started = time.perf_counter()
        for chunk in batches(rows):
            with engine.begin() as connection:
                connection.execute(insert(table), chunk)
        return len(rows) / (time.perf_counter() - started)
    finally:
        table.drop(engine)
        engine.dispose()


def apply_rate(store: Store, items: list[AccountStateMessage]) -> float:
    started = time.perf_counter()
    for chunk in batches(items):
        store.apply(chunk)
    return len(items) / (time.perf_counter() - started)


async def produce_catchup(settings: Settings, count: int) -> None:
    topic = settings.topic(ACCOUNT_STATE)
    await ensure_topics(settings, [s for s in contract_topics(settings) if s.name == topic])
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20
    )
    await producer.start()
    try:
        futures = []
        for state in states(count, version=2):
            value = orjson.dumps(state.model_dump())
            futures.append(await producer.send(topic, value, key=state.customer_id.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_rate(settings: Settings, store: Store, count: int) -> float:
    """Records/s from the first batch handled to the last one applied, via StateConsumer."""
    metrics = ApiMetrics.create()
    with ThreadPoolExecutor(1) as writer:
        consumer = StateConsumer(settings, store, metrics, writer)
        first: list[float] = []
        handle = consumer.handle

        async def timed(batch: Batch) -> bool:
            first.append(first[0] if first else time.perf_counter())
            return await handle(batch)

        consumer.handle = timed  # type: ignore[method-assign]
        await consumer.start()
        task = asyncio.create_task(consumer.run())
        sample = ("billstream_api_state_messages_total", {"result": "applied"})
        try:
            while (metrics.registry.get_sample_value(*sample) or 0) < count:
                await asyncio.sleep(0.01)
                if task.done():
                    task.result()
            return count / (time.perf_counter() - first[0])
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await consumer.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wrk(database: str | None, script: Path) -> dict[str, float]:
    """Serve (read API over `database`, or the bare handler) in a child process; load it."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.api_serve", "--port", str(port)]
    server = subprocess.Popen(argv + (["--database", database] if database else []), cwd=ROOT)
    try:
        probe = f"http://127.0.0.1:{port}/accounts/cus_000001"
        for _ in range(200):
            try:
                request = urllib.request.Request(
                    probe, headers={"Authorization": f"Bearer {BENCH_TOKEN}"}
                )
                urllib.request.urlopen(request, timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        load = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", "--latency"]
        load += ["-H", AUTH_HEADER]
        out = subprocess.run(
            [*load, "-s", str(script), f"http://127.0.0.1:{port}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        server.terminate()
        server.wait()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, f"errors under load: {out}"
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale}


def paired_reads(url: str, script: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Ours and the bare handler, alternated twice, best of each: load noise hits both alike."""
    ours, bare = [], []
    for _ in range(2):
        bare.append(wrk(None, script))
        ours.append(wrk(url, script))

    def best(runs: list[dict[str, float]]) -> dict[str, float]:
        return {"rps": max(r["rps"] for r in runs), "p99_ms": min(r["p99_ms"] for r in runs)}

    return best(ours), best(bare)


def bench_backend(url: str, catchup_url: str, settings: Settings, script: Path) -> dict[str, Any]:
    """Load ACCOUNTS into `url` and read them; catch up CATCHUP records into `catchup_url`."""
    rows = [state.row() for state in states(ACCOUNTS)]
    bare = bare_insert_rate(url, rows)
    store = Store(url)
    store.migrate()
    loaded = apply_rate(store, states(ACCOUNTS))
    store.close()
    catchup_store = Store(catchup_url)
    catchup_store.migrate()
    group = settings.model_copy(update={"billstream_app_id": f"bench-{uuid.uuid4().hex[:8]}"})
    e2e = asyncio.run(consume_rate(group, catchup_store, CATCHUP))
    catchup_store.close()
    read, bare_read = paired_reads(url, script)
    return {
        "bare_handler": bare_read,
        "bare_insert_rows_per_s": bare,
        "apply_rows_per_s": loaded,
        "apply_ratio": loaded / bare,
        "catchup_from_kafka_per_s": e2e,
        "catchup_ratio": e2e / bare,
        "read": read,
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    script = work / "random.lua"
    script.write_text(WRK_SCRIPT.replace("{n}", str(ACCOUNTS)))
    settings = Settings(
        _env_file=None,
        billstream_topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    )
    results: dict[str, Any] = {"accounts": ACCOUNTS, "catchup_records": CATCHUP, "batch": BATCH}
    try:
        asyncio.run(produce_catchup(settings, CATCHUP))
        results["sqlite"] = bench_backend(
            f"sqlite:///{work}/read.db", f"sqlite:///{work}/catchup.db", settings, script
        )
        with temporary_cluster() as admin:
            results["postgresql"] = bench_backend(
                create_database(admin), create_database(admin), settings, script
            )
    finally:
        asyncio.run(_delete_topic(settings))
        shutil.rmtree(work, ignore_errors=True)
    report(results)


async def _delete_topic(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([settings.topic(ACCOUNT_STATE)])
    except Exception as error:
        print(f"bench: could not delete the bench topic: {error}", file=sys.stderr)
    finally:
        await admin.close()


def report(results: dict[str, Any]) -> None:
    print()
    for name in ("sqlite", "postgresql"):
        r = results[name]
        bare = r["bare_handler"]
        read = r["read"]
        read["rps_ratio"] = read["rps"] / bare["rps"]
        read["p99_ratio"] = read["p99_ms"] / bare["p99_ms"]
        print(
            f"{name:>10}: GET /accounts/{{id}} {read['rps']:.0f} req/s"
            f" ({read['rps_ratio']:.2f}x bare), p99 {read['p99_ms']:.2f} ms"
            f" ({read['p99_ratio']:.1f}x bare; bare: {bare['rps']:.0f} req/s,"
            f" p99 {bare['p99_ms']:.2f} ms)\n"
            f"{'':>12}bare insert {r['bare_insert_rows_per_s']:.0f} rows/s;"
            f" Store.apply {r['apply_rows_per_s']:.0f}/s ({r['apply_ratio']:.2f}x);"
            f" catch-up from Kafka {r['catchup_from_kafka_per_s']:.0f}/s"
            f" ({r['catchup_ratio']:.2f}x)"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
