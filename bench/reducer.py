"""`make bench-reducer`: the worker's per-record compute, as a ratio to parse + serialize alone.

No broker and no Faust: the records of bench-worker (~100k realistic events over 10k customers,
Stripe-sized payloads, retries and a few poison records) go through, measured in the same run:
  floor   `orjson.loads(raw)` + `orjson.dumps` of the result for every record - baseline
  worker  what `EventProcessor.handle` (processors/agents.py) computes per record: table get,
          `StateCache.load`, `apply_record`, table set, `StateCache.keep`, then
          `ProcessorMetrics.record(effects)` (poison: the DLQ counter); not the Kafka sends,
          nor the lag histogram of the received-at header
Each is timed --repeat times from an empty table and the best kept (other work on a shared
machine only ever slows a run down). A digest of every table value, output and effect list
tells whether two versions of the code compute the same bytes. Results: printed, and
bench/results/reducer.json.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from bench.worker import realistic
from billstream.processors.config import ReducerConfig
from billstream.processors.dlq import MISSING_KEY
from billstream.processors.metrics import ProcessorMetrics
from billstream.processors.parsing import InvalidEvent
from billstream.processors.steps import StateCache, apply_record
from tests.support import factories as f
from tests.support.workload import Record, build_workload

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reducer.json"
CONFIG = ReducerConfig(plan_map=dict(f.PLAN_MAP))


def floor(records: list[Record]) -> float:
    """Seconds to parse and re-serialize every record (poison: the parse attempt only)."""
    loads, dumps, error = orjson.loads, orjson.dumps, orjson.JSONDecodeError
    start = time.perf_counter()
    for _, raw, _ in records:
        try:  # noqa: SIM105 (contextlib.suppress would add its own cost to the floor)
            dumps(loads(raw))
        except error:
            pass
    return time.perf_counter() - start


def worker(records: list[Record], digest: Any = None) -> float:
    """Seconds for the worker's per-record compute over every record, from an empty table.

    With `digest` (a hashlib object), every value, output and effect list is fed to it.
    """
    table: dict[bytes, bytes] = {}
    states = StateCache()
    metrics = ProcessorMetrics(CollectorRegistry())
    start = time.perf_counter()
    for key, raw, _ in records:
        try:
            if not key:
                raise InvalidEvent(MISSING_KEY)
            previous = table.get(key)
            state = states.load(key, previous)
            applied = apply_record(previous, raw, CONFIG, state)
        except InvalidEvent as error:
            metrics.dlq.labels(reason=error.reason).inc()
            if digest is not None:
                digest.update(f"dlq {error.reason}\n".encode())
            continue
        if applied.value is not None:
            table[key] = applied.value
            states.keep(key, applied)
        metrics.record(applied.effects)
        if digest is not None:
            digest.update(repr((applied.value, applied.output, applied.effects)).encode())
    return time.perf_counter() - start


def best_of(repeat: int, run: Callable[[list[Record]], float], records: list[Record]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(run(records))
    return min(times)


def main(args: argparse.Namespace) -> None:
    workload = build_workload(args.customers, seed=3)
    records = realistic(workload.records, args.events)
    size = sum(len(value) for _, value, _ in records) / len(records)
    print(f"{len(records)} records, {args.customers} customers, mean {size:.0f} bytes")
    digest = hashlib.sha256()
    worker(records, digest)  # warm-up, and what the code computes
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    floor_s = best_of(args.repeat, floor, records)
    worker_s = best_of(args.repeat, worker, records)
    load_after = os.getloadavg()[0]
    floor_us = floor_s / len(records) * 1e6
    worker_us = worker_s / len(records) * 1e6
    print(f"floor  (orjson loads + dumps): {floor_us:7.2f} µs/record")
    print(f"worker (apply_record + metrics): {worker_us:7.2f} µs/record")
    print(f"ratio worker/floor: {worker_us / floor_us:.2f}")
    print(f"output digest: {digest.hexdigest()[:16]}")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "records": len(records),
        "customers": args.customers,
        "mean_record_bytes": round(size),
        "repeat": args.repeat,
        "load_average_1m": [load_before, load_after],
        "floor_us_per_record": round(floor_us, 2),
        "worker_us_per_record": round(worker_us, 2),
        "ratio": round(worker_us / floor_us, 2),
        "output_sha256": digest.hexdigest(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {RESULTS.relative_to(ROOT)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
