"""Fixed-rate (open-loop) load for the ingest benchmark, run as its own process.

Requests are due at exact instants (`rate` per second) and wait in a queue for one of the
keep-alive connections; latency counts from the instant a request was due, so a slow server
cannot hide its queueing by slowing the sender (no coordinated omission). Raw HTTP/1.1 over
asyncio streams keeps the sender's own cost low; its CPU use is reported to show it was not
the bottleneck. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter

from bench.ingest_bodies import bodies, raw_request

CONNECTIONS = 64


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def connection(
    host: str, port: int, queue: asyncio.Queue[tuple[float, bytes] | None],
    latencies: list[float], statuses: Counter[str],
) -> None:  # fmt: skip
    """One keep-alive connection: send the next due request, read its answer, repeat."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await queue.get()) is not None:
            due, request = item
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(loop.time() - due)
            statuses[head[9:12].decode()] += 1
    finally:
        writer.close()


async def fixed_rate(
    host: str, port: int, secret: str, rate: float, duration: float
) -> dict[str, object]:
    now = int(time.time())
    corpus = [raw_request(body, secret, now, f"{host}:{port}") for body in bodies(500, seed=11)]
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    workers = [
        asyncio.create_task(connection(host, port, queue, latencies, statuses))
        for _ in range(CONNECTIONS)
    ]
    total = int(rate * duration)
    cpu_before = time.process_time()
    start = loop.time() + 0.1
    sent = 0
    while sent < total:
        due_count = min(total, int((loop.time() - start) * rate) + 1)
        while sent < due_count:
            queue.put_nowait((start + sent / rate, corpus[sent % len(corpus)]))
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = loop.time() - start
    latencies.sort()
    return {
        "sent": total,
        "statuses": dict(statuses),
        "rate": round(total / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "sender_cpu_share": round((time.process_time() - cpu_before) / elapsed, 2),
        "sender_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(fixed_rate(args.host, args.port, args.secret, args.rate, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
