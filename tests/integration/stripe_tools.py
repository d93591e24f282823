"""Helpers for the Stripe API tools' integration tests: topic sizes and a worker child process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from billstream.settings import Settings
from billstream.verify.readers import topic_partitions


async def record_count(settings: Settings, topic: str) -> int:
    """Records in `topic` (end minus beginning offsets, all partitions)."""
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(settings, topic)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        end = await consumer.end_offsets(partitions)
        begin = await consumer.beginning_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        await consumer.stop()


class WorkerChild:
    """`billstream worker` as a child process with the test's settings (plus `extra_env`)."""

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str]) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = {**os.environ, **self._settings_env(settings), **extra_env}
        self.base_url = f"http://127.0.0.1:{settings.worker_web_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _settings_env(settings: Settings) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "BILLSTREAM_TOPIC_PREFIX": settings.billstream_topic_prefix,
            "BILLSTREAM_APP_ID": settings.billstream_app_id,
            "WORKER_WEB_PORT": str(settings.worker_web_port),
            "WORKER_DATA_DIR": settings.worker_data_dir,
            "BILLING_PLAN_MAP": ",".join(f"{k}={v}" for k, v in settings.billing_plan_map.items()),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "billstream.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def get(self, path: str) -> tuple[int, str]:
        assert self.proc is not None
        assert self.proc.poll() is None, f"worker exited:\n{self.log_tail()}"
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.base_url + path) as response,
        ):
            return response.status, await response.text()

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if (await self.get("/readyz"))[0] == 200:
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout:.0f} s:\n{self.log_tail()}")

    async def metric(self, name: str) -> float:
        """The sum of every sample of `name` on /metrics."""
        _, text = await self.get("/metrics")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
