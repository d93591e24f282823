"""A live billstream stack: ingest, worker and api as child processes on free ports, and (for
observability tests) a real Prometheus server scraping them every second.

Everything binds to 127.0.0.1, uses the test's own topic prefix and consumer group, and writes
under the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from billstream.settings import Settings
from tests.support.children import bearer, free_port, settings_env

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "prometheus" / "alerts.yml"
SERVICES = ("ingest", "worker", "api")
START_TIMEOUT = 120.0
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f]")


def service_env(settings: Settings) -> dict[str, str]:
    """The children's environment: every setting the test chose, made explicit."""
    return settings_env(settings, LOG_LEVEL="INFO", LOG_FORMAT="json", PYTHONUNBUFFERED="1")


async def get_json(url: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout, headers=headers) as session,
        session.get(url, params=params) as response,
    ):
        return await response.json(content_type=None)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            if await check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout:.0f} s")
        await asyncio.sleep(0.5)


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class LiveStack:
    settings: Settings
    workdir: Path
    prometheus_port: int = field(default_factory=free_port)
    children: dict[str, Child] = field(default_factory=dict)
    with_prometheus: bool = True
    services: tuple[str, ...] = SERVICES  # + "drift-audit" where a test configures it

    @property
    def api_headers(self) -> dict[str, str]:
        """What a client of this stack's api sends: its bearer token."""
        return bearer(self.settings)

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def port(self, service: str) -> int:
        ports = {
            "ingest": self.settings.ingest_port,
            "worker": self.settings.worker_web_port,
            "api": self.settings.api_port,
            "drift-audit": self.settings.drift_audit_port,
            "resolve": self.settings.resolver_port,
        }
        return ports[service]

    async def start(self) -> None:
        env = service_env(self.settings)
        for name in self.services:
            argv = [sys.executable, "-m", "billstream.cli", name]
            self.children[name] = Child(name, argv, self.workdir / f"{name}.log", env)
        if self.with_prometheus:
            self.children["prometheus"] = Child(
                "prometheus", self.prometheus_argv(), self.workdir / "prometheus.log", env
            )
        for child in self.children.values():
            child.start()
        for name in self.children:
            await self.wait_ready(name)

    def prometheus_argv(self) -> list[str]:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: make test installs it (scripts/system-deps.sh)"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [{"targets": [f"127.0.0.1:{self.port(name)}"]}],
                }
                for name in self.services
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            "--log.level=warn",
        ]

    async def wait_ready(self, name: str) -> None:
        child = self.children[name]
        url = (
            f"{self.prometheus}/-/ready"
            if name == "prometheus"
            else f"http://127.0.0.1:{self.port(name)}/readyz"
        )

        async def ready() -> bool:
            child.check_running()
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                return response.status == 200

        await eventually(ready, f"{name} ready", START_TIMEOUT)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    def simulate(self, *args: str) -> dict[str, Any]:
        """Run `billstream simulate` against ingest; returns its JSON summary."""
        summary_path = self.workdir / "simulate.json"
        url = f"http://127.0.0.1:{self.settings.ingest_port}/webhooks/stripe"
        argv = [sys.executable, "-m", "billstream.cli", "simulate", "--url", url, "--no-progress"]
        result = subprocess.run(
            [*argv, "--summary-json", str(summary_path), *args],
            cwd=ROOT,
            env=service_env(self.settings),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        (self.workdir / "simulate.txt").write_text(result.stdout)
        summary: dict[str, Any] = json.loads(summary_path.read_text())
        return summary

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; fails on a PromQL error."""
        body = await get_json(f"{self.prometheus}/api/v1/query", query=promql)
        assert body["status"] == "success", (promql, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def scalar(self, promql: str) -> float:
        result = await self.query(promql)
        return float(result[0]["value"][1]) if result else math.nan

    async def exported_families(self) -> set[str]:
        """Metric families some scraped target declares (`# TYPE`), samples or not."""
        body = await get_json(f"{self.prometheus}/api/v1/metadata")
        return set(body["data"])

    def log_lines(self, name: str) -> list[str]:
        """A child's output lines, without terminal control sequences (Faust's spinner)."""
        text = self.children[name].log_path.read_text(errors="replace")
        return [line for line in ANSI_ESCAPE.sub("", text).splitlines() if line.strip()]

    async def rules(self) -> list[dict[str, Any]]:
        body = await get_json(f"{self.prometheus}/api/v1/rules")
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]
