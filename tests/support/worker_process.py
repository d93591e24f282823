"""Run `billstream worker` as a real child process, and read topics back to their end.

Shared by the worker's integration tests and the benchmarks: a subprocess is what production
runs, and the only way to SIGKILL a worker mid-stream.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from billstream.settings import Settings
from tests.support.children import settings_env

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0  # a fresh consumer group joins in seconds; a restart waits a session timeout


def worker_env(settings: Settings) -> dict[str, str]:
    """The child's environment: the caller's, with every setting the test chose made explicit."""
    return settings_env(settings, LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")


class WorkerProcess:
    """One `python -m billstream.cli worker` child; its output goes to `log_path`."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        python_args: tuple[str, ...] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.python_args = python_args  # e.g. ("-m", "cProfile", "-o", path) in the benchmark
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{settings.worker_web_port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.python_args, "-m", "billstream.cli", "worker"],
                cwd=ROOT,
                env={**worker_env(self.settings), **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, "worker not started"
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        return self.proc

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.base_url + path, timeout=aiohttp.ClientTimeout(total=5)) as resp,
        ):
            return resp.status, await resp.text()

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll /readyz until 200; fail with the log tail if the worker dies or never gets ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._running()
            try:
                status, _ = await self.get("/readyz")
                if status == 200:
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout:.0f} s:\n{self.log_tail()}")

    async def metric(self, name: str) -> float:
        """Sum of every sample of `name` (all label sets) on /metrics."""
        self._running()
        _, text = await self.get("/metrics")
        return metric_value(text, name)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no final commit, no producer flush."""
        proc = self._running()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if the worker ignores it. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"worker ignored SIGTERM:\n{self.log_tail()}") from None


def metric_value(text: str, name: str) -> float:
    """Sum of the samples of `name` in Prometheus text (exact name, any labels)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in described["partitions"])
    assert partitions, f"topic {topic} does not exist"
    return partitions


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The offset after the last record of each partition of `topic`."""
    tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


async def wait_caught_up(
    bootstrap: str, group: str, topic: str, worker: WorkerProcess, timeout: float = 120.0
) -> None:
    """Until the group's committed offsets reach the end of `topic` (every record processed)."""
    end = await end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    committed: Mapping[int, int] = {}
    while time.monotonic() < deadline:
        worker._running()
        committed = await committed_offsets(bootstrap, group, topic)
        if all(committed.get(p, -1) >= offset for p, offset in end.items()):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"group {group} committed {dict(committed)} of {end} after {timeout:.0f} s:\n"
        f"{worker.log_tail()}"
    )


async def read_all(
    bootstrap: str, topic: str, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` up to its current end, each partition in offset order."""
    end = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    next_offset = dict.fromkeys(end, 0)
    deadline = time.monotonic() + timeout
    try:
        while any(next_offset[p] < offset for p, offset in end.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {topic} up to {next_offset}, not to its end {end}")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, partition_records in batch.items():
                records.extend(partition_records)
                next_offset[tp.partition] = partition_records[-1].offset + 1
    finally:
        await consumer.stop()
    return records
