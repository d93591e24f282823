"""The soak's bulk load from vegeta, a compiled open-loop HTTP load generator (`go install`).

A Python sender saturates a core near 1,500 webhooks/s on the 2-core machine, so above that the
generator, not the pipeline, was the limit. Here vegeta posts the unsampled customers' events
(`-lazy` JSON targets on its stdin, each body signed as it is written so the signature stays
within ingest's tolerance) at their share of the rate, while soak_load.py's Python sender keeps
the sampled customers (1 in `sample_every`) on pinned connections, so their visibility probes
and the oracle stay exact. vegeta's own report gives the bulk's statuses and latencies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from bench.soak_load import PATH, Outgoing
from bench.soak_monitor import cpu_seconds
from billstream.stripe_signing import sign_payload

VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"


def vegeta_binary() -> str:
    """The vegeta next to this venv's Python (`make soak` installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "vegeta"
    found = str(beside) if beside.exists() else shutil.which("vegeta")
    if found is None:
        raise SystemExit(f"vegeta not found: GOBIN=$PWD/.venv/bin go install {VEGETA_MODULE}")
    return found


def target(url: str, body: bytes, secret: str) -> bytes:
    """One vegeta JSON target (a line), signed now."""
    line = {
        "method": "POST",
        "url": url,
        "body": base64.b64encode(body).decode(),
        "header": {
            "Content-Type": ["application/json"],
            "Stripe-Signature": [sign_payload(body, secret)],
        },
    }
    return orjson.dumps(line) + b"\n"


@dataclass
class VegetaRun:
    """One attack: what vegeta reported, and the CPU it used."""

    report: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # vegeta's
    feeder_cpu_seconds: float = 0.0  # the process writing its targets


def _write_targets(
    stdin: IO[bytes], stream: Iterator[Outgoing], urls: Sequence[str], secret: str
) -> None:
    """Feed vegeta until it stops reading (its duration is over); with several ingest URLs
    each customer keeps to one, as behind a balancer with sticky connections."""
    try:
        for outgoing in stream:
            url = urls[zlib.crc32(outgoing.customer.encode()) % len(urls)]
            stdin.write(target(url, outgoing.body, secret))
    except (BrokenPipeError, ValueError):
        pass  # vegeta finished and closed its end
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()


async def attack(
    host: str, ports: Sequence[int], secret: str, rate: float, duration: float,
    stream: Iterator[Outgoing], out_dir: Path, max_workers: int = 512,
) -> VegetaRun:  # fmt: skip
    """Post `rate` webhooks/s from `stream` for `duration` s with vegeta (to one ingest per
    port); its report when done."""
    urls = [f"http://{host}:{port}{PATH}" for port in ports]
    args = (urls, secret, rate, duration, stream, out_dir, max_workers)
    return await asyncio.to_thread(_attack, *args)


def _attack(
    urls: Sequence[str], secret: str, rate: float, duration: float, stream: Iterator[Outgoing],
    out_dir: Path, max_workers: int,
) -> VegetaRun:  # fmt: skip
    binary = vegeta_binary()
    results = out_dir / "vegeta.bin"
    command = [
        binary, "attack", "-format=json", "-lazy", f"-rate={rate:g}/s", f"-duration={duration:g}s",
        f"-max-workers={max_workers}", "-timeout=30s", "-keepalive=true", f"-output={results}",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert process.stdin is not None
    run = VegetaRun()
    # Its own process (forked: the feeder's template is built already), so signing and encoding
    # the targets competes neither with the sampled sender's event loop nor for its GIL.
    writer = multiprocessing.get_context("fork").Process(
        target=_write_targets, args=(process.stdin, stream, urls, secret), daemon=True
    )
    writer.start()
    process.stdin.close()  # the writer holds the pipe now
    while process.poll() is None:  # the CPU used, read while /proc still has the processes
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            run.cpu_seconds = cpu_seconds(process.pid)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, TypeError):
            run.feeder_cpu_seconds = cpu_seconds(writer.pid)  # type: ignore[arg-type]
        time.sleep(0.5)
    writer.join(5)
    if writer.is_alive():
        writer.kill()
    report = subprocess.run(
        [binary, "report", "-type=json", str(results)], capture_output=True, check=True
    )
    run.report = json.loads(report.stdout)
    return run


def summary(run: VegetaRun, duration: float) -> dict[str, Any]:
    """The bulk's figures in the soak's units (ms, per second, share of one core)."""
    latencies = run.report.get("latencies", {})

    def ms(name: str) -> float | None:
        value = latencies.get(name)
        return None if value is None else round(value / 1e6, 1)

    return {
        "requests": run.report.get("requests"),
        "rate": round(run.report.get("rate", 0.0), 1),
        "throughput": round(run.report.get("throughput", 0.0), 1),
        "status_codes": run.report.get("status_codes", {}),
        "errors": run.report.get("errors", [])[:5],
        "webhook_ms": {"p50": ms("50th"), "p99": ms("99th"), "max": ms("max")},
        "cpu_share_of_one_core": round(run.cpu_seconds / max(duration, 1e-9), 2),
        "feeder_cpu_share_of_one_core": round(run.feeder_cpu_seconds / max(duration, 1e-9), 2),
    }
