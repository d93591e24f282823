"""`make bench-ingest`: verified-and-published webhooks/s and latency, as ratios to a bare handler.

Each server runs as its own process on loopback; load comes from separate processes: `wrk`
(closed loop) for throughput, then `bench.ingest_load` (open loop, fixed rate) for latency at
1,000 requests/s. Bodies are realistic 3-8 KB Stripe events, each signed. Servers, measured in
the same run:
  bare             aiohttp handler: read body, answer 200 (no verification, no Kafka) - baseline
  bare-asyncio     the same handler on asyncio's own loop, as a plain aiohttp app runs: the
                   baseline the issue's figures describe (~19k req/s on the 2-core machine)
  ingest           billstream ingest: verify, parse, publish acks=all via librdkafka, answer
  ingest-aiokafka  the same app with an aiokafka publisher (comparison; --no-aiokafka skips it)
Every other server runs on ingest's event loop (uvloop; --loop asyncio for asyncio's own), started
the way `billstream ingest` starts; each row names the loop its server reported. Ratios are
given against both baselines: `bare` (same loop: the strict one) and `bare-asyncio`.
Throughput is each server's peak over a sweep of wrk connection counts (--connections,
default 32,64,128,256), the way server benchmarks report capacity: bare peaks at few
connections, while ingest holds every request for the broker's acknowledgement (a few ms) and
needs more of them in flight to keep its loop busy (Little's law); one fixed count would
measure one of the two below its capacity. Before the first round, ingest publishes for
--broker-warmup seconds so that the broker's JIT compilation is not charged to round 1.
The servers alternate for --rounds rounds and ratios are medians over rounds, so drifting load
on a shared machine hits every server alike. Besides throughput, each server's event-loop CPU
per request at its peak is reported (bare's over the server's = its capacity ratio when
CPU-bound), with the loop's utilisation (CPU seconds per second: ~1.0 means saturated).
Published records are counted from the topic's end offsets (>= 2xx answers), then the topic is
deleted. Results: printed, and bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.ingest_bodies import bodies, raw_request

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ingest.json"
PARTITIONS = 4
BASELINES = ("bare", "bare-asyncio")  # same loop as ingest (strict); a plain aiohttp app
WRK_SCRIPT = """
local requests = {}
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  while true do
    local size = f:read("*l")
    if not size then break end
    requests[#requests + 1] = f:read(tonumber(size))
  end
  f:close()
  index = math.random(#requests)
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU of a process (all threads), or of one of its threads (from /proc)."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: server on port {port} not ready after {timeout} s")
        time.sleep(0.2)


def _find(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"bench: unexpected wrk output (no {pattern!r}):\n{text}")
    return found.group(1)


def _ms(duration: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", duration).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port: int, requests_file: Path, seconds: int, connections: int) -> dict[str, Any]:
    """Closed loop: `connections` keep-alive connections, each sending as fast as answers come."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
        f"http://127.0.0.1:{port}", "--", str(requests_file),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": int(_find(r"(\d+) requests in", output)),
        "rps": float(_find(r"Requests/sec:\s+([\d.]+)", output)),
        "p50_ms": _ms(_find(r"^\s+50%\s+(\S+)$", output)),
        "p99_ms": _ms(_find(r"^\s+99%\s+(\S+)$", output)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def write_requests(path: Path, corpus: list[bytes], secret: str, port: int) -> None:
    """Length-prefixed raw requests for the wrk script, signed now (valid for the tolerance)."""
    now = int(time.time())
    with path.open("wb") as out:
        for body in corpus:
            request = raw_request(body, secret, now, f"127.0.0.1:{port}")
            out.write(b"%d\n" % len(request) + request)


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def publish_buckets(port: int) -> dict[float, float]:
    """Ingest's own stripe_webhook_publish_seconds histogram: cumulative count per bound."""
    pattern = r'^stripe_webhook_publish_seconds_bucket\{endpoint="snapshot",le="([^"]+)"\} (\S+)$'
    return {
        float(bound): float(count)
        for bound, count in re.findall(pattern, get(port, "/metrics"), re.MULTILINE)
    }


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The smallest histogram bound (ms) at or under which a share `q` of the new samples fell."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    for bound in sorted(after):
        if total and after[bound] - before.get(bound, 0.0) >= q * total:
            return bound * 1000
    return float("nan")


def run_fixed_rate(
    port: int, secret: str, rate: float, seconds: float, publishes: bool
) -> dict[str, Any]:
    """Open-loop latency; also what held the server's loop up meanwhile (its loop-lag probe)
    and, for ingest, how long the broker took to acknowledge (its publish histogram): a p99
    beyond both is the OS or the load generator, one near the publish bound is the broker."""
    command = [
        sys.executable, "-m", "bench.ingest_load", "--port", str(port),
        "--secret", secret, "--rate", str(rate), "--duration", str(seconds),
    ]  # fmt: skip
    get(port, "/bench/loop-lag")  # starts a new window
    before = publish_buckets(port) if publishes else {}
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(output)
    result["loop_lag"] = json.loads(get(port, "/bench/loop-lag"))
    if publishes:
        after = publish_buckets(port)
        result["publish_p99_le_ms"] = bucket_quantile(before, after, 0.99)
    return result


async def topic_records(bootstrap: str, topic: str, delete: bool) -> int:
    """Records in `topic` (end offsets summed); optionally delete it afterwards."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
    if delete:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    return sum(ends.values())


@contextlib.contextmanager
def running_server(
    kind: str, args: argparse.Namespace, run_id: str
) -> Iterator[tuple[subprocess.Popen[str], int, str, str, str]]:
    """One server process, ready: (process, port, secret, topic prefix, loop it reports)."""
    port = free_port()
    secret = f"whsec_bench_{run_id}"
    prefix = f"bench{run_id}.{kind}."
    env = dict(os.environ)
    env.update(
        STRIPE_WEBHOOK_SECRETS=secret,
        KAFKA_BOOTSTRAP_SERVERS=args.bootstrap,
        BILLSTREAM_TOPIC_PREFIX=prefix,
        BILLSTREAM_TOPIC_PARTITIONS=str(PARTITIONS),
        BILLSTREAM_APP_ID=f"bench-{run_id}",
        LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "bench.ingest_serve", kind, "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--loop", args.loop], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_ready(port)
        assert server.stdout is not None
        loop = server.stdout.readline().removeprefix("loop ").strip()  # the first line it prints
        yield server, port, secret, prefix, loop
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def warm_broker(args: argparse.Namespace, corpus: list[bytes], run_id: str) -> int:
    """Publish through ingest for --broker-warmup seconds and discard the figures: a freshly
    started broker JIT-compiles its request path first and then costs a fraction of the CPU per
    record (measured here: ~130 µs, then ~35 µs), which would otherwise be charged to round 1."""
    with (
        running_server("ingest", args, run_id) as (_, port, secret, prefix, _loop),
        tempfile.TemporaryDirectory() as tmp,
    ):
        requests_file = Path(tmp) / "requests.bin"
        write_requests(requests_file, corpus, secret, port)
        warm = run_wrk(port, requests_file, args.broker_warmup, max(args.connections))
    asyncio.run(topic_records(args.bootstrap, f"{prefix}stripe.events", delete=True))
    return int(warm["requests"])


def sweep(
    server: subprocess.Popen[str], port: int, requests_file: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], int]:
    """wrk at every connection count: (the peak's result, every count's, 2xx answers in all).

    The event loop runs on the main thread (tid == pid): its CPU per request is what caps one
    process; the whole process adds librdkafka's threads."""
    levels: dict[int, dict[str, Any]] = {}
    answered_2xx = 0
    for connections in args.connections:
        before = cpu_seconds(server.pid), cpu_seconds(server.pid, server.pid), time.monotonic()
        result = run_wrk(port, requests_file, args.duration, connections)
        after = cpu_seconds(server.pid), cpu_seconds(server.pid, server.pid), time.monotonic()
        for name, spent in (("process", after[0] - before[0]), ("loop", after[1] - before[1])):
            result[f"{name}_cpu_us_per_request"] = round(spent / result["requests"] * 1e6, 1)
        result["loop_utilisation"] = round((after[1] - before[1]) / (after[2] - before[2]), 2)
        result["connections"] = connections
        levels[connections] = result
        answered_2xx += result["requests"] - result["non_2xx"]
    peak = max(levels.values(), key=lambda level: float(level["rps"]))
    return dict(peak), levels, answered_2xx


def measure(
    kind: str, args: argparse.Namespace, corpus: list[bytes], run_id: str
) -> dict[str, Any]:
    """Start one server, warm it up, then the wrk sweep (throughput) and the fixed-rate run."""
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    with running_server(kind, args, run_id) as (server, port, secret, prefix, loop):
        with tempfile.TemporaryDirectory() as tmp:
            requests_file = Path(tmp) / "requests.bin"
            write_requests(requests_file, corpus, secret, port)
            warmup = run_wrk(port, requests_file, args.warmup, max(args.connections))
            result, levels, answered_2xx = sweep(server, port, requests_file, args)
        result["levels"] = levels
        result["fixed_rate"] = run_fixed_rate(
            port, secret, args.rate, args.rate_duration, publishes=not kind.startswith("bare")
        )
        result["load_average_1m"] = [load_before, os.getloadavg()[0]]
        result["loop"] = loop
    if not kind.startswith("bare"):
        answered_2xx += (
            warmup["requests"] - warmup["non_2xx"]
            + result["fixed_rate"]["statuses"].get("200", 0)
        )  # fmt: skip
        published = asyncio.run(
            topic_records(args.bootstrap, f"{prefix}stripe.events", delete=not args.keep_topics)
        )
        result["answered_2xx"] = answered_2xx
        result["published"] = published
        if published < answered_2xx:
            raise SystemExit(
                f"bench: {kind} answered {answered_2xx} x 2xx but published {published}"
            )
    return result


def report(rounds: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    counts = ",".join(str(c) for c in args.connections)
    print(
        f"\ningest benchmark: wrk -t1 for {args.duration} s at each of {counts} connections "
        f"(peak shown), then {args.rate:.0f} req/s for {args.rate_duration:.0f} s; "
        f"{len(rounds)} round(s)"
    )
    print(f"{'round server':<20}{'req/s':>8}{'ratio':>7}{'conns':>6}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'loop us':>8}{'util':>6}{'proc us':>8}{'non-2xx':>8}  "
          f"@{args.rate:.0f}/s p50 / p99 ms, statuses, event loop")  # fmt: skip
    for number, results in enumerate(rounds, 1):
        base = results["bare"]["rps"]
        for kind, r in results.items():
            fixed = r["fixed_rate"]
            print(
                f"{number:<3}{kind:<17}{r['rps']:>8.0f}{r['rps'] / base:>7.2f}"
                f"{r['connections']:>6}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
                f"{r['loop_cpu_us_per_request']:>8.1f}{r['loop_utilisation']:>6.2f}"
                f"{r['process_cpu_us_per_request']:>8.1f}{r['non_2xx']:>8}  "
                f"{fixed['p50_ms']:.2f} / {fixed['p99_ms']:.2f}  {fixed['statuses']}  "
                f"{r['loop']}"
            )
            by_level = ", ".join(
                f"{c}: {level['rps']:.0f}/s {level['loop_cpu_us_per_request']:.0f} us "
                f"u{level['loop_utilisation']:.2f}"
                for c, level in r["levels"].items()
            )
            print(f"{'':<20}by connections: {by_level}")
            lag = fixed["loop_lag"]
            publish = fixed.get("publish_p99_le_ms")
            print(
                f"{'':<20}@{args.rate:.0f}/s: loop lag p99 {lag.get('p99_ms')} ms, "
                f"max {lag.get('max_ms')} ms"
                + ("" if publish is None else f"; broker acknowledged 99% within {publish:g} ms")
            )
            if "published" in r:
                print(f"{'':<20}published {r['published']} records, {r['answered_2xx']} x 2xx")
    for base in BASELINES:
        if base not in rounds[0]:
            continue
        throughput, capacity = median_ratios(rounds, base), capacity_ratios(rounds, base)
        for kind in rounds[0]:
            print(
                f"{kind:<16} median ratio to {base}: throughput {throughput[kind]:.2f}, "
                f"event-loop CPU capacity {capacity[kind]:.2f}"
            )


def median_ratios(rounds: list[dict[str, dict[str, Any]]], base: str) -> dict[str, float]:
    """Per kind, the median over rounds of its throughput divided by that round's baseline."""
    return {
        kind: round(statistics.median(r[kind]["rps"] / r[base]["rps"] for r in rounds), 3)
        for kind in rounds[0]
    }


def capacity_ratios(rounds: list[dict[str, dict[str, Any]]], base: str) -> dict[str, float]:
    """Per kind, median of bare's event-loop CPU per request over its own: requests one process
    can serve relative to bare when CPU-bound. Steadier than throughput on a shared machine."""
    key = "loop_cpu_us_per_request"
    return {
        kind: round(statistics.median(r[base][key] / r[kind][key] for r in rounds), 3)
        for kind in rounds[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--rounds", type=int, default=3, help="bare/ingest alternations")
    parser.add_argument(
        "--duration", type=int, default=5, help="wrk seconds per server and connection count"
    )
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per server")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(count) for count in text.split(",")],
        default=[32, 64, 128, 256],
        help="wrk connection counts swept per server (comma-separated); the peak counts",
    )
    parser.add_argument(
        "--broker-warmup", type=int, default=20, help="seconds ingest publishes before round 1"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate requests/s")
    parser.add_argument("--rate-duration", type=float, default=8.0)
    parser.add_argument("--no-aiokafka", action="store_true", help="skip the aiokafka comparison")
    parser.add_argument(
        "--loop",
        choices=["ingest", "asyncio"],
        default="ingest",
        help="event loop of every server: ingest's (uvloop) or asyncio's own",
    )
    parser.add_argument("--keep-topics", action="store_true", help="do not delete bench topics")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (Debian: apt-get install -y wrk)")
    run_id = uuid.uuid4().hex[:8]
    corpus = bodies(1000)
    same_loop_only = args.loop == "asyncio"  # then bare already runs on asyncio's loop
    kinds = ["bare", *([] if same_loop_only else ["bare-asyncio"]), "ingest"]
    kinds += [] if args.no_aiokafka else ["ingest-aiokafka"]
    if args.broker_warmup > 0:
        warmed = warm_broker(args, corpus, f"{run_id}w")
        print(f"broker warmed up: {warmed} webhooks in {args.broker_warmup} s", flush=True)
    # Alternating the servers spreads drift in machine load over all of them.
    rounds = [
        {kind: measure(kind, args, corpus, f"{run_id}r{number}") for kind in kinds}
        for number in range(args.rounds)
    ]
    report(rounds, args)
    sizes = sorted(len(body) for body in corpus)
    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "bodies": {"count": len(corpus), "min": sizes[0], "max": sizes[-1]},
        "settings": {k: v for k, v in vars(args).items() if k != "bootstrap"},
        "median_ratio": {base: median_ratios(rounds, base) for base in BASELINES if base in kinds},
        "median_cpu_capacity_ratio": {
            base: capacity_ratios(rounds, base) for base in BASELINES if base in kinds
        },
        "rounds": rounds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
