"""`make bench-scale`: the worker and the api holding 1M customers, against 10k in the same run.

Each deployment gets its own topics; stripe.events is filled with one subscription event per
customer, and a worker (a child process) folds them all. Reported per deployment:
  fold      seconds and worker RSS once every customer is in the table
  restart   a second worker's start-to-ready seconds (`/readyz`: table recovered) and its RSS.
            RocksDB reopens its files and reads only the changelog after the offset it stored;
            memory:// replays the whole changelog, which is why production uses RocksDB.
  api       (the RocksDB deployments) the api's read model (SQLite, or `--postgres` a
            throw-away PostgreSQL cluster) takes every account state; then
            `GET /accounts/{id}` p50/p99 over random customers, one request at a time.
The 10k-customer deployment is the baseline for the api's latency. Results: printed, and
bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from confluent_kafka import Producer
from pydantic import SecretStr

from bench.soak_monitor import lags
from bench.soak_report import percentile
from bench.worker import delete_topics, rss_kib, run_worker
from bench.worker import settings_for as worker_settings
from billstream.routing import record_headers
from billstream.settings import Settings
from billstream.topics import ensure_topics
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.postgres import create_database, temporary_cluster
from tests.support.services import Service
from tests.support.worker_process import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.json"
BASELINE_CUSTOMERS = 10_000
READ_TIMEOUT = 1800.0  # seconds a fold, a restart or the read model's catch-up may take


def settings_for(bootstrap: str, store: str, tmp: Path, database_url: str | None) -> Settings:
    """bench/worker.py's worker settings, plus an api with its own read model."""
    worker = worker_settings(bootstrap, store, tmp)
    return worker.model_copy(
        update={
            "database_url": database_url or f"sqlite:///{tmp / worker.billstream_app_id}.db",
            "api_port": free_port(),
            "api_tokens": (SecretStr("scale_" + uuid.uuid4().hex),),
        }
    )


def customer(n: int) -> str:
    return f"cus_scale{n:07d}"


def records(customers: int) -> Iterator[tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]]:
    """One live subscription per customer: the smallest state a real customer has."""
    for n in range(customers):
        event = f.subscription_event(
            "customer.subscription.created",
            created=1_767_225_600 + n,
            customer=customer(n),
            sub_id=f"sub_scale{n:07d}",
            prices=[f.pro_monthly()],
        )
        yield customer(n).encode(), orjson.dumps(event), list(record_headers(event, 0))


def fill(settings: Settings, customers: int) -> None:
    """librdkafka, batched: a million records in seconds, partitioned like ingest does."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "partitioner": "murmur2_random",
            "linger.ms": 50,
            "batch.size": 1024 * 1024,
            "compression.type": "lz4",
            "queue.buffering.max.kbytes": 512 * 1024,
        }
    )
    topic = settings.topic("stripe.events")
    for key, value, headers in records(customers):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("records left undelivered")


async def restart(settings: Settings, log: Path) -> tuple[float, float]:
    """Seconds from a new worker's start to `/readyz` 200, and its RSS (MiB) then."""
    worker = WorkerProcess(settings, log)
    started = time.monotonic()
    worker.start()
    try:
        await worker.wait_ready(READ_TIMEOUT)
        elapsed = time.monotonic() - started
        assert worker.proc is not None
        return elapsed, rss_kib(worker.proc.pid) / 1024
    finally:
        worker.stop()


async def read_latency(
    settings: Settings, customers: int, tmp: Path, requests: int
) -> dict[str, Any]:
    """The api's catch-up over every account state, then GET latency over random customers."""
    api = Service("api", settings, settings.api_port, tmp / f"{settings.billstream_app_id}.api.log")
    api.start()
    try:
        await api.wait_ready(120)
        started = time.monotonic()
        while (await lags(settings))["api"]:
            if time.monotonic() - started > READ_TIMEOUT:
                raise RuntimeError(f"the api did not catch up:\n{api.log_tail()}")
            await asyncio.sleep(1.0)
        catch_up = time.monotonic() - started
        rng = random.Random(11)
        latencies = []
        async with aiohttp.ClientSession(base_url=api.base_url, headers=api.headers) as session:
            for _ in range(requests):
                path = f"/accounts/{customer(rng.randrange(customers))}"
                sent = time.perf_counter()
                async with session.get(path) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status}")
                latencies.append(time.perf_counter() - sent)
        return {
            "catch_up_s": round(catch_up, 1),
            "requests": requests,
            "get_p50_ms": round((percentile(latencies, 0.5) or 0) * 1000, 2),
            "get_p99_ms": round((percentile(latencies, 0.99) or 0) * 1000, 2),
        }
    finally:
        api.stop()


async def deployment(
    args: argparse.Namespace, store: str, customers: int, tmp: Path, with_api: bool
) -> dict[str, Any]:
    database_url = create_database(args.postgres_admin) if args.postgres_admin else None
    settings = settings_for(args.bootstrap, store, tmp, database_url)
    await ensure_topics(settings)
    name = f"{store.split(':')[0]} {customers:,}"
    try:
        started = time.monotonic()
        await asyncio.to_thread(fill, settings, customers)
        filled = time.monotonic() - started
        log = tmp / f"{settings.billstream_app_id}.worker.log"
        started = time.monotonic()
        worker, pid, cpu = await run_worker(settings, customers, log)
        folded = time.monotonic() - started
        rss = rss_kib(pid) / 1024
        worker.stop()
        restart_s, restart_rss = await restart(settings, log)
        result: dict[str, Any] = {
            "store": store,
            "customers": customers,
            "fill_s": round(filled, 1),
            "fold_s": round(folded, 1),
            "fold_cpu_us_per_customer": round(cpu / customers * 1e6),
            "rss_mib_after_fold": round(rss),
            "restart_to_ready_s": round(restart_s, 1),
            "rss_mib_after_restart": round(restart_rss),
        }
        if with_api:
            result["api"] = await read_latency(settings, customers, tmp, args.requests)
        print(f"{name}: {json.dumps(result)}", flush=True)
        return result
    finally:
        await delete_topics(settings, [])


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    with contextlib.ExitStack() as stack:
        args.postgres_admin = stack.enter_context(temporary_cluster()) if args.postgres else None
        try:
            baseline = await deployment(args, "rocksdb://", BASELINE_CUSTOMERS, tmp, True)
            rocksdb = await deployment(args, "rocksdb://", args.customers, tmp, True)
            memory = None
            if not args.skip_memory:
                memory = await deployment(args, "memory://", args.customers, tmp, False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    base_p99, big_p99 = baseline["api"]["get_p99_ms"], rocksdb["api"]["get_p99_ms"]
    result = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "database": "postgresql" if args.postgres else "sqlite",
        "baseline": baseline,
        "rocksdb": rocksdb,
        "memory": memory,
        "api_get_p99_ratio_vs_baseline": round(big_p99 / base_p99, 2) if base_p99 else None,
    }
    if memory is not None:
        restarts = memory["restart_to_ready_s"] / rocksdb["restart_to_ready_s"]
        result["restart_ratio_memory_vs_rocksdb"] = round(restarts, 1)
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[result["database"]] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=5_000, help="GETs per deployment")
    parser.add_argument("--postgres", action="store_true", help="read model on PostgreSQL")
    parser.add_argument("--skip-memory", action="store_true", help="RocksDB deployments only")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
