"""`make bench-worker`: events/s through one worker, as a ratio to a bare consume→produce loop.

stripe.events is pre-filled with ~100k realistic events over 10k customers (Stripe-sized
payloads: 2-4 KB, retries and a few poison records included). Measured in the same run:
  bare    aiokafka consumer → producer (acks=all) copying every record to a sink topic: baseline
  worker  `billstream worker` (a child process) until the last state change is on
          billing.account-state
Both rates are records in / (last output CreateTime - first output CreateTime), so start-up and
group join are excluded alike. Then the worker's RSS after 100k customers (a fresh worker, one
subscription per customer). Topics are deleted at the end. Results: printed, and
bench/results/worker.json (`--store rocksdb://` to measure the production store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from billstream.routing import record_headers
from billstream.settings import Settings
from billstream.tables.tables import CUSTOMER_STATE_TABLE
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ensure_topics
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.stripe_fields import with_stripe_fields
from tests.support.worker_process import WorkerProcess, read_all
from tests.support.workload import Record, build_workload

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "worker.json"
PLAN_MAP = ",".join(f"{key}={plan}" for key, plan in f.PLAN_MAP.items())


def settings_for(bootstrap: str, store: str, data_dir: Path) -> Settings:
    uid = uuid.uuid4().hex[:8]
    return Settings(
        _env_file=None,
        kafka_bootstrap_servers=bootstrap,
        billstream_topic_prefix=f"bench{uid}.",
        billstream_app_id=f"bench-worker-{uid}",
        worker_web_port=free_port(),
        worker_store=store,
        worker_data_dir=str(data_dir / uid),
        worker_session_timeout=10,
        billing_plan_map=PLAN_MAP,
        log_level="WARNING",
    )


def realistic(records: list[Record], limit: int) -> list[Record]:
    """The first `limit` records, each event carrying Stripe's extra fields."""
    out: list[Record] = []
    for key, value, headers in records[:limit]:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            out.append((key, value, headers))  # poison stays poison
            continue
        if isinstance(event, dict) and "data" in event:
            value = orjson.dumps(with_stripe_fields(event))
        out.append((key, value, headers))
    return out


async def fill(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        futures = []
        for key, value, headers in records:
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def span(records: list[Any]) -> float:
    """Seconds between the first and the last record's CreateTime."""
    stamps: list[int] = [record.timestamp for record in records]
    return (max(stamps) - min(stamps)) / 1000


async def bare_loop(bootstrap: str, source: str, sink: str, count: int) -> tuple[float, float]:
    """Baseline: consume every record and produce it unchanged (acks=all).

    Returns records/s and CPU seconds per record (this process: nothing else runs in it).
    """
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    seen = 0
    cpu_start = time.process_time()
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batch.values():
                for record in records:
                    await producer.send(
                        sink, key=record.key, value=record.value, headers=list(record.headers)
                    )
                    seen += 1
        await producer.flush()
        cpu = time.process_time() - cpu_start
    finally:
        await producer.stop()
        await consumer.stop()
    return count / span(await read_all(bootstrap, sink)), cpu / count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def run_worker(
    settings: Settings, count: int, log: Path, profile: str | None = None
) -> tuple[WorkerProcess, int, float]:
    """Start a worker over a pre-filled topic; wait until it processed `count` records.

    Returns the worker, its pid and the CPU seconds it used after it was ready.
    """
    python_args = ("-m", "cProfile", "-o", profile) if profile else ()
    worker = WorkerProcess(settings, log, python_args)
    worker.start()
    await worker.wait_ready()
    assert worker.proc is not None
    cpu_at_ready = cpu_seconds(worker.proc.pid)
    deadline = time.monotonic() + 1800
    while await worker.metric("billstream_event_lag_seconds_count") < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker did not finish:\n{worker.log_tail()}")
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # let the last sends reach the broker
    return worker, worker.proc.pid, cpu_seconds(worker.proc.pid) - cpu_at_ready


async def delete_topics(settings: Settings, extra: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        names = [settings.topic(n) for n in (STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ACCOUNT_STATE)]
        names += [f"{settings.billstream_app_id}-{CUSTOMER_STATE_TABLE}-changelog", *extra]
        existing = set(await admin.list_topics())
        await admin.delete_topics([name for name in names if name in existing])
    finally:
        await admin.close()


async def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    settings = settings_for(args.bootstrap, args.store, tmp)
    workload = build_workload(args.customers, seed=3)
    records = realistic(workload.records, args.events)
    size = sum(len(value) for _, value, _ in records) / len(records)
    print(f"{len(records)} records, {args.customers} customers, mean {size:.0f} bytes")
    source, sink = settings.topic(STRIPE_EVENTS), settings.topic("bench.sink")
    await ensure_topics(settings)
    try:
        await fill(args.bootstrap, source, records)
        bare, bare_cpu = await bare_loop(args.bootstrap, source, sink, len(records))
        print(f"bare loop: {bare:,.0f} records/s, {bare_cpu * 1e6:.0f} µs CPU per record")
        log = tmp / "throughput.log"
        worker, pid, worker_cpu = await run_worker(settings, len(records), log, args.profile)
        rss = rss_kib(pid)
        outputs = await read_all(args.bootstrap, settings.topic(ACCOUNT_STATE))
        worker.stop()
        rate = len(records) / span(outputs)
        cpu = worker_cpu / len(records)
        print(f"worker: {rate:,.0f} records/s = {rate / bare:.2f} of the bare loop")
        # CPU per record is what a busy machine distorts least: the rate ratio moves with load.
        print(
            f"worker: {cpu * 1e6:.0f} µs CPU per record = {bare_cpu / cpu:.2f} of the bare loop's"
        )
        print(f"worker RSS after {args.customers} customers: {rss / 1024:.0f} MiB")
        return {
            "records": len(records),
            "customers": args.customers,
            "mean_record_bytes": round(size),
            "outputs": len(outputs),
            "bare_records_per_s": round(bare),
            "worker_records_per_s": round(rate),
            "ratio": round(rate / bare, 3),
            "bare_cpu_us_per_record": round(bare_cpu * 1e6),
            "worker_cpu_us_per_record": round(cpu * 1e6),
            "cpu_ratio": round(bare_cpu / cpu, 3),
            "rss_mib_after_customers": round(rss / 1024),
        }
    finally:
        await delete_topics(settings, [sink])


async def memory(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """RSS of a worker holding `rss_customers` customers (one live subscription each)."""
    settings = settings_for(args.bootstrap, args.store, tmp)
    records: list[Record] = []
    for n in range(args.rss_customers):
        customer = f"cus_rss{n:07d}"
        event = with_stripe_fields(
            f.subscription_event(
                "customer.subscription.created",
                created=1_767_225_600 + n,
                customer=customer,
                sub_id=f"sub_rss{n:07d}",
                prices=[f.pro_monthly()],
            )
        )
        records.append((customer.encode(), orjson.dumps(event), record_headers(event, 0)))
    await ensure_topics(settings)
    try:
        await fill(args.bootstrap, settings.topic(STRIPE_EVENTS), records)
        worker, pid, _ = await run_worker(settings, len(records), tmp / "memory.log")
        rss = rss_kib(pid)
        worker.stop()
        print(f"worker RSS after {args.rss_customers} customers: {rss / 1024:.0f} MiB")
        return {"customers": args.rss_customers, "rss_mib": round(rss / 1024)}
    finally:
        await delete_topics(settings, [])


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    try:
        result: dict[str, Any] = {
            "store": args.store,
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "python": platform.python_version(),
            "throughput": await throughput(args, tmp),
        }
        if args.rss_customers:
            result["memory"] = await memory(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.store.split(":")[0]] = result
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(ROOT)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--store", default="memory://", choices=["memory://", "rocksdb://"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rss-customers", type=int, default=100_000, help="0 skips the phase")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the worker into PATH")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
