"""Fixed-rate (open-loop) load for the ingest benchmark, run as its own process.

Requests are scheduled at exact instants and latency counts from the scheduled instant, so a slow
server cannot hide its queueing delay by slowing the sender (no coordinated omission).
Prints one JSON object: sent, statuses, achieved rate, p50/p99/max latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import aiohttp

from bench.ingest_bodies import bodies
from billstream.stripe_signing import sign_payload


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def fixed_rate(url: str, secret: str, rate: float, duration: float) -> dict[str, object]:
    timestamp = int(time.time())
    corpus = [(body, sign_payload(body, secret, timestamp)) for body in bodies(500, seed=11)]
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float, body: bytes, signature: str) -> None:
            headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except aiohttp.ClientError as error:
                statuses[type(error).__name__] += 1
                return
            latencies.append(loop.time() - scheduled)

        total = int(rate * duration)
        start = loop.time() + 0.05
        tasks = set()
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body, signature = corpus[i % len(corpus)]
            task = asyncio.create_task(one(scheduled, body, signature))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    latencies.sort()
    return {
        "sent": total,
        "statuses": dict(statuses),
        "rate": round(total / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(fixed_rate(args.url, args.secret, args.rate, args.duration))))


if __name__ == "__main__":
    main()
