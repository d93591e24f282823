"""`make soak`: the whole pipeline under a steady webhook load, then the figures that matter.

ingest, worker and api run as child processes (as in production: RocksDB store, SQLite read
model, JSON logs at INFO) against a private broker; soak_load.py posts `--rate` signed,
Stripe-sized webhooks per second for `--duration` seconds. Reported: status counts (only 2xx
and designed 503s may appear), webhook latency, webhook→API visibility latency (p50/p99 over
the sampled customers), RSS and CPU of every process at start (after warm-up) and end, both
consumer lags when sending stops and how long they take to drain, and whether the sampled
customers' served state equals the pure reducer's fold. Not a test: figures, not assertions.
Results: printed, and bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import soak_vegeta as vegeta
from bench.soak_load import Feeder, Prober, Results, Sampled, post_open_loop
from bench.soak_monitor import Monitor, lags
from bench.soak_report import after_load, profile_worker, summarize
from bench.soak_vegeta import VegetaRun
from billstream.processors.config import ReducerConfig
from billstream.settings import Settings
from billstream.tables.state import CustomerState
from billstream.topics import ensure_topics
from tests.support.factories import PLAN_MAP
from tests.support.private_broker import KAFKA_HOME, PrivateBroker, free_ports
from tests.support.services import Service

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "soak.json"
SECRET = "whsec_soak_" + uuid.uuid4().hex[:12]
SOAK_TOKEN = "soak_" + uuid.uuid4().hex
BULK_CHUNKS = 50_000  # the bulk feeder's chunk numbers start here (tags soak5xxxx_)
PROBE_INTERVAL = 0.025  # seconds between polls of pending customers: visibility's resolution


def soak_settings(bootstrap: str, args: argparse.Namespace, tmp: Path) -> Settings:
    uid = uuid.uuid4().hex[:8]
    ingest, worker, api = free_ports(3)
    return Settings(
        _env_file=None,
        kafka_bootstrap_servers=bootstrap,
        billstream_topic_prefix=f"soak{uid}.",
        billstream_app_id=f"soak-{uid}",
        stripe_webhook_secrets=SECRET,
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
        worker_store=args.store,
        worker_data_dir=str(tmp / "worker"),
        database_url=args.database_url or f"sqlite:///{tmp / 'read.db'}",
        ingest_port=ingest,
        worker_web_port=worker,
        api_port=api,
        api_tokens=SOAK_TOKEN,
        log_format="json",
    )


def pipeline(settings: Settings, args: argparse.Namespace, tmp: Path) -> dict[str, Service]:
    """`--ingests` ingest processes (ingest, ingest2, …; each its own port), `--workers` workers
    in one consumer group (each its own web port and data directory), one api."""
    services = {}
    ports = [settings.ingest_port, *free_ports(args.ingests - 1)]
    for n, port in enumerate(ports, 1):
        name = "ingest" if n == 1 else f"ingest{n}"
        own = settings.model_copy(update={"ingest_port": port})
        services[name] = Service("ingest", own, port, tmp / f"{name}.log", "--host", "127.0.0.1")
    web_ports = [settings.worker_web_port, *free_ports(args.workers - 1)]
    for n, port in enumerate(web_ports, 1):
        name = "worker" if n == 1 else f"worker{n}"
        update = {"worker_web_port": port, "worker_data_dir": str(tmp / name)}
        own = settings.model_copy(update=update)
        services[name] = Service("worker", own, port, tmp / f"{name}.log")
    services["api"] = Service("api", settings, settings.api_port, tmp / "api.log")
    return services


def ingest_ports(services: dict[str, Service]) -> list[int]:
    return [
        int(s.base_url.rsplit(":", 1)[1]) for n, s in services.items() if n.startswith("ingest")
    ]


def broker_pid(bootstrap: str) -> int:
    port = bootstrap.rsplit(":", 1)[1]
    return int((KAFKA_HOME / f"kafka-{port}.pid").read_text())


async def drain(settings: Settings, prober: Prober, timeout: float) -> float | None:
    """Seconds until both consumer lags are 0 and every probe resolved; None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not any((await lags(settings)).values()) and not prober.pending:
            return round(time.monotonic() - started, 1)
        await asyncio.sleep(1.0)
    return None


async def served_matches_oracle(api: Service, acked: dict[str, CustomerState]) -> dict[str, int]:
    """Sampled customers whose served account differs from the reducer's fold of their 2xx'd
    events (each customer's events were acknowledged in order: one connection per customer)."""
    mismatches = 0
    for customer, state in acked.items():
        view = state.account_view()
        status, body = await api.get(f"/accounts/{customer}")
        if view is None:
            mismatches += status != 404
        elif status != 200 or body != {k: view.get(k) for k in body}:  # platform: null account
            mismatches += 1
    return {"sampled_customers": len(acked), "mismatches": mismatches}


async def send_load(
    args: argparse.Namespace, settings: Settings, feeder: Feeder, results: Results,
    prober: Prober, tmp: Path, bulk_ports: list[int],
) -> VegetaRun | None:  # fmt: skip
    """The whole rate from Python, or (vegeta) the sampled customers' share from Python and the
    rest from vegeta, each open-loop, at once."""
    port = settings.ingest_port
    if args.generator == "python":
        await post_open_loop(
            "127.0.0.1", port, SECRET, args.rate, args.duration, feeder, results, prober
        )
        return None
    sampled_share = 1 / args.sample_every
    probed = (outgoing for outgoing in feeder if outgoing.sampled)
    bulk_feeder = Feeder(Sampled(feeder.sampled.config), args.sample_every)
    bulk_feeder.index = BULK_CHUNKS  # its own customers and event ids
    bulk = (outgoing for outgoing in bulk_feeder if not outgoing.sampled)
    python_rate, bulk_rate = args.rate * sampled_share, args.rate * (1 - sampled_share)
    _, run = await asyncio.gather(
        post_open_loop(
            "127.0.0.1", port, SECRET, python_rate, args.duration, probed, results, prober
        ),
        vegeta.attack(
            "127.0.0.1",
            bulk_ports,
            SECRET,
            bulk_rate,
            args.duration,
            bulk,
            tmp,
            args.vegeta_workers,
        ),
    )
    return run


async def recover(
    args: argparse.Namespace, settings: Settings, feeder: Feeder, prober: Prober
) -> Results:
    """Right after the load, `--after-rate` from the Python sender alone (its customers, one in
    `--sample-every` probed) for `--after-duration` s: how soon visibility is back after an
    overload. Its own results; probes of events sent before it are left out by their due time."""
    results = Results()
    prober.results = results
    await post_open_loop(
        "127.0.0.1", settings.ingest_port, SECRET, args.after_rate, args.after_duration,
        feeder, results, prober,
    )  # fmt: skip
    return results


def with_bulk(
    summary: dict[str, Any], bulk: VegetaRun | None, args: argparse.Namespace, elapsed: float
) -> dict[str, Any]:
    """The figures of both senders: statuses and the rate over all requests, each one's
    latency and CPU (`load` is the Python process, `vegeta` the bulk generator)."""
    summary["settings"]["generator"] = args.generator
    if bulk is None:
        return summary
    figures = vegeta.summary(bulk, args.duration)
    statuses = dict(summary["statuses"])
    for code, count in figures["status_codes"].items():
        statuses[code] = statuses.get(code, 0) + count
    summary["statuses"] = statuses
    summary["unexpected_statuses"] = {k: v for k, v in statuses.items() if k not in ("200", "503")}
    summary["sent"] += figures["requests"] or 0
    summary["achieved_rate"] = round(summary["sent"] / elapsed, 1)
    summary["sampled_webhook_ms"] = summary.pop("webhook_ms")
    summary["webhook_ms"] = figures["webhook_ms"]  # the bulk: 99% of the requests
    summary["vegeta"] = figures
    return summary


async def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    broker = None if args.bootstrap else PrivateBroker.on_free_ports()
    if broker is not None:
        await asyncio.to_thread(broker.start)
    bootstrap = args.bootstrap or (broker.bootstrap if broker else "")
    settings = soak_settings(bootstrap, args, tmp)
    await ensure_topics(settings)
    services = pipeline(settings, args, tmp)
    try:
        for service in services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready(120) for s in services.values()))
        pids = {name: s.pid for name, s in services.items()}
        pids |= {"broker": broker_pid(bootstrap), "load": os.getpid()}
        monitor = Monitor(settings, pids, {n: s.base_url for n, s in services.items()})
        results = Results()
        sampled = Sampled(ReducerConfig.from_settings(settings))
        prober = Prober(
            services["api"].base_url, results, sampled, PROBE_INTERVAL,
            headers=services["api"].headers,
        )  # fmt: skip
        feeder = Feeder(sampled, args.sample_every)
        stop = asyncio.Event()
        background = [asyncio.create_task(monitor.run()), asyncio.create_task(prober.run(stop))]
        profiling = asyncio.create_task(profile_worker(pids["worker"], args, tmp / "worker.prof"))
        load_started = time.monotonic()
        # This process sends the sampled events and probes them: its full collections (it holds
        # the oracle's states and the feeder's) paused both for seconds ~50 s into a run, which
        # showed up as the pipeline's visibility. Cycles wait until the probes are done.
        gc.disable()
        try:
            bulk = await send_load(
                args, settings, feeder, results, prober, tmp, ingest_ports(services)
            )
            elapsed = time.monotonic() - load_started
            end_sample = await monitor.sample()
            after = await recover(args, settings, feeder, prober) if args.after_rate else None
            stop.set()
            drained = await drain(settings, prober, args.drain)
            prober.give_up()
        finally:
            gc.enable()
        final_sample = await monitor.sample()
        correctness = await served_matches_oracle(services["api"], sampled.acked)
        for task in background:
            task.cancel()
        profile = await profiling
        summary = summarize(
            args, results, elapsed, monitor.samples, end_sample, final_sample, drained,
            correctness, profile,
        )  # fmt: skip
        if after is not None:
            summary["after_load"] = after_load(after, args.after_rate)
        return with_bulk(summary, bulk, args, elapsed)
    finally:
        for service in services.values():
            service.stop()
        if broker is not None:
            await asyncio.to_thread(broker.remove)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--duration", type=float, default=float(env("DURATION", "600")))
    parser.add_argument("--rate", type=float, default=float(env("RATE", "1000")))
    parser.add_argument("--bootstrap", help="use this broker instead of a private one")
    parser.add_argument("--store", default="rocksdb://", choices=["rocksdb://", "memory://"])
    parser.add_argument("--database-url", help="read model (default: SQLite in a temp dir)")
    parser.add_argument("--sample-every", type=int, default=100, help="1 customer in N probed")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before 'start' RSS")
    parser.add_argument("--drain", type=float, default=300.0, help="max seconds to drain lag")
    parser.add_argument("--profile-worker", type=float, default=0.0, metavar="SECONDS",
                        help="py-spy the worker for SECONDS after the warm-up")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs' temp directory")
    parser.add_argument(
        "--vegeta-workers", type=int, default=512,
        help="vegeta's connections at most (raise it for an overload run: open loop past capacity)",
    )  # fmt: skip
    parser.add_argument("--ingests", type=int, default=1, help="ingest processes (vegeta spreads "
                        "customers over them; the sampled ones go to the first)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="worker processes, one group")
    parser.add_argument("--after-rate", type=float, default=0.0, help="then this rate from the "
                        "Python sender, to time the recovery from an overload")  # fmt: skip
    parser.add_argument("--after-duration", type=float, default=60.0)
    parser.add_argument("--generator", choices=["vegeta", "python"],
                        default=env("SOAK_GENERATOR", "vegeta"),
                        help="bulk from vegeta (compiled), or the Python sender alone")  # fmt: skip
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="billstream-soak-"))
    try:
        result = await soak(args, tmp)
    finally:
        if args.keep:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"{args.rate:g}/s"] = result  # the latest run at each rate
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
