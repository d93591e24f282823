"""The soak's figures from its raw series, and an optional py-spy profile of the worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.soak_load import Results

LINE_NUMBER = re.compile(r":\d+\)$")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def per_process(start: dict[str, Any], end: dict[str, Any], final: dict[str, Any],
                samples: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """RSS at start (after warm-up), end of sending, max, after the drain; CPU share in between."""
    span = max(1e-9, end["t"] - start["t"])
    out = {}
    for name in start["rss_mib"]:
        out[name] = {
            "rss_mib_start": start["rss_mib"][name],
            "rss_mib_end": end["rss_mib"][name],
            "rss_mib_max": max(s["rss_mib"][name] for s in [*samples, end]),
            "rss_mib_after_drain": final["rss_mib"][name],
            "cpu_share_of_one_core": round((end["cpu_s"][name] - start["cpu_s"][name]) / span, 2),
        }
    return out


def rates(start: dict[str, Any], end: dict[str, Any]) -> dict[str, float]:
    """Records per second each service completed between the two samples."""
    span = max(1e-9, end["t"] - start["t"])
    done, before = end["done"], start["done"]
    return {name: round((done[name] - before[name]) / span, 1) for name in done}


def worst(results: Results, count: int = 5) -> list[tuple[float, float]]:
    """The slowest visibilities as (seconds into the load, milliseconds): a start-up transient,
    a periodic stall (commits, compaction) and scattered queueing look different here."""
    pairs = sorted(zip(results.visibility, results.visible_at, strict=True), reverse=True)
    return [(round(at - results.started, 1), ms(latency) or 0.0) for latency, at in pairs[:count]]


def by_due(results: Results) -> Iterator[tuple[float, float]]:
    """(seconds into the load the event was due, its visibility) for every probed event."""
    for latency, at in zip(results.visibility, results.visible_at, strict=True):
        yield at - latency - results.started, latency


def after_warmup(results: Results, warmup: float) -> dict[str, Any]:
    """Visibility of the events due `warmup` seconds or more into the load."""
    steady = [latency for due, latency in by_due(results) if due >= warmup]
    return {
        "samples": len(steady),
        "p50": ms(percentile(steady, 0.5)),
        "p99": ms(percentile(steady, 0.99)),
        "max": ms(max(steady, default=None)),
    }


def after_load(results: Results, rate: float, window: float = 10.0) -> dict[str, Any]:
    """The recovery phase: its statuses and answer times, and visibility per `window` seconds
    of due time since it began (events due before it, still probed then, are left out)."""
    by_window: dict[int, list[float]] = {}
    for due, latency in by_due(results):
        if due >= 0:
            by_window.setdefault(int(due // window), []).append(latency)
    return {
        "rate": rate,
        "sent": results.sent,
        "statuses": dict(results.statuses),
        "webhook_ms": {
            "p50": ms(percentile(results.http_latencies, 0.5)),
            "p99": ms(percentile(results.http_latencies, 0.99)),
        },
        "visibility_ms_by_window": [
            {
                "from_s": n * window,
                "samples": len(values),
                "p50": ms(percentile(values, 0.5)),
                "p99": ms(percentile(values, 0.99)),
            }
            for n, values in sorted(by_window.items())
        ],
    }


def summarize(
    args: argparse.Namespace, results: Results, elapsed: float, samples: list[dict[str, Any]],
    end: dict[str, Any], final: dict[str, Any], drained: float | None,
    correctness: dict[str, int], profile: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    start = next((s for s in samples if s["t"] >= args.warmup), samples[0])
    statuses = dict(results.statuses)
    return {
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "settings": {
            "rate": args.rate,
            "duration": args.duration,
            "store": args.store,
            "database": "postgresql" if args.database_url else "sqlite",
            "sample_every": args.sample_every,
        },
        "sent": results.sent,
        "achieved_rate": round(results.sent / elapsed, 1),
        "statuses": statuses,
        "unexpected_statuses": {k: v for k, v in statuses.items() if k not in ("200", "503")},
        "webhook_ms": {
            "p50": ms(percentile(results.http_latencies, 0.5)),
            "p99": ms(percentile(results.http_latencies, 0.99)),
            "max": ms(max(results.http_latencies, default=None)),
        },
        "visibility_ms": {
            "samples": len(results.visibility),
            "p50": ms(percentile(results.visibility, 0.5)),
            "p99": ms(percentile(results.visibility, 0.99)),
            "max": ms(max(results.visibility, default=None)),
            "worst": worst(results),
            "unresolved": results.unresolved,
        },
        # Steady state: events due once the warm-up was over (the broker's JIT, first
        # connections and the first commits fall in the first seconds of every run).
        "visibility_ms_after_warmup": after_warmup(results, args.warmup),
        "visibility_after_answer_ms": {
            "p50": ms(percentile(results.after_answer, 0.5)),
            "p99": ms(percentile(results.after_answer, 0.99)),
        },
        "records_per_s": rates(start, end),
        "lag_at_end_of_sending": end["lag"],
        "drained_after_s": drained,
        "lag_after_drain": final["lag"],
        "processes": per_process(start, end, final, samples),
        "sampled_state": correctness,
        "worker_profile": profile,
        "series": samples,
    }


def collapse(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(n / total, 3)) for frame, n in counter.most_common(top)]

    return {"samples": total, "self": shares(own), "inclusive": shares(inclusive)}


async def profile_worker(pid: int, args: argparse.Namespace, path: Path) -> dict[str, Any] | None:
    """py-spy the worker for `--profile-worker` seconds once the warm-up is over."""
    if not args.profile_worker:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    await asyncio.sleep(args.warmup)
    process = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(int(args.profile_worker)),
        "--format", "raw", "--output", str(path), "--rate", "50", "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await process.wait()
    return collapse(path) if process.returncode == 0 else None
