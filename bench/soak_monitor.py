"""The soak's instruments: RSS and CPU of every process, consumer lags, service counters."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS
from tests.support.worker_process import committed_offsets, end_offsets, metric_value

TICKS = os.sysconf("SC_CLK_TCK")
COUNTERS = {  # service -> the counter that says how much it has done
    "ingest": "stripe_webhook_queued_total",
    "worker": "billstream_event_lag_seconds_count",
    "api": "billstream_api_state_messages_total",
}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def lags(settings: Settings) -> dict[str, int]:
    """Records not yet committed by the worker's group and by the api's group."""
    bootstrap, group = settings.kafka_bootstrap_servers, settings.billstream_app_id
    out = {}
    for name, topic, member in (
        ("worker", settings.topic(STRIPE_EVENTS), group),
        ("api", settings.topic(ACCOUNT_STATE), f"{group}-api"),
    ):
        end = await end_offsets(bootstrap, topic)
        committed = await committed_offsets(bootstrap, member, topic)
        out[name] = sum(max(0, offset - max(0, committed.get(p, 0))) for p, offset in end.items())
    return out


@dataclass
class Monitor:
    """Samples every `interval` seconds until cancelled; `samples` is the time series."""

    settings: Settings
    pids: dict[str, int]
    urls: dict[str, str]  # service -> base URL, for its counter
    interval: float = 5.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    async def sample(self) -> dict[str, Any]:
        counters = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for name, url in self.urls.items():
                try:
                    async with session.get(f"{url}/metrics") as response:
                        kind = name.rstrip("0123456789")  # ingest2 counts as ingest does
                        counters[name] = metric_value(await response.text(), COUNTERS[kind])
                except (aiohttp.ClientError, TimeoutError):
                    counters[name] = float("nan")
        return {
            "t": round(time.monotonic() - self.started, 1),
            "rss_mib": {name: round(rss_mib(pid), 1) for name, pid in self.pids.items()},
            "cpu_s": {name: round(cpu_seconds(pid), 2) for name, pid in self.pids.items()},
            "lag": await lags(self.settings),
            "done": counters,
            "load": os.getloadavg()[0],
        }

    async def run(self) -> None:
        while True:
            self.samples.append(await self.sample())
            await asyncio.sleep(self.interval)
