"""Service child processes, a signed webhook stream, end-state reads (the fault tests, the soak).

Every service runs as `python -m billstream.cli <command>` with the test's settings, exactly as
in production, so a test can SIGKILL it, starve it or pull its broker or database away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import SecretStr

from billstream.routing import routing_key
from billstream.settings import Settings
from billstream.stripe_signing import sign_payload
from tests.support.children import bearer

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


def _env_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_env_value(item) or "" for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The caller's environment with every field of `settings` as its variable (none left out)."""
    env = dict(os.environ)
    for name in type(settings).model_fields:
        text = _env_value(getattr(settings, name))
        if text is None:
            env.pop(name.upper(), None)
        else:
            env[name.upper()] = text
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Service:
    """One `billstream <command>` child process serving HTTP on `port`; output to `log_path`."""

    def __init__(
        self, command: str, settings: Settings, port: int, log_path: Path, *args: str
    ) -> None:
        self.command = command
        self.argv = [sys.executable, "-m", "billstream.cli", command, *args]
        self.env = settings_env(settings)
        self.base_url = f"http://127.0.0.1:{port}"
        self.headers = bearer(settings)  # the api wants it; ingest and worker ignore it
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.running().pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def running(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, f"{self.command} not started"
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.command} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )
        return self.proc

    async def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON body or text) of a GET; fails if the process died."""
        self.running()
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT, headers=self.headers) as session,
            session.get(self.base_url + path) as response,
        ):
            text = await response.text()
            try:
                return response.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return response.status, text

    async def wait_status(self, path: str, status: int, timeout: float = READY_TIMEOUT) -> None:
        """Poll `path` until it answers `status`; fail with the log tail after `timeout`."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = (await self.get(path))[0]
                if last == status:
                    return
            except (aiohttp.ClientError, TimeoutError) as error:
                last = error
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"{self.command} {path} not {status} after {timeout:.0f} s (last: {last!r}):\n"
            f"{self.log_tail()}"
        )

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        await self.wait_status("/readyz", 200, timeout)

    async def metric(self, name: str) -> float:
        """Sum of the samples of `name` (any labels) on /metrics."""
        _, text = await self.get("/metrics")
        total = 0.0
        for line in str(text).splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs."""
        proc = self.running()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def api_accounts(api: Service) -> dict[str, dict[str, Any]]:
    """Every account the api serves, by customer id (all keyset pages)."""
    accounts: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        status, body = await api.get(f"/accounts?limit=500{after}")
        assert status == 200, (status, body)
        accounts.update({item["customer_id"]: item for item in body["items"]})
        if body["next"] is None:
            return accounts
        after = f"&after={body['next']}"


async def api_caught_up_with(
    api: Service, published: dict[str, dict[str, Any]], timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    """Every account the api serves, once it serves every published state's version."""
    wanted = {key: state["version"] for key, state in published.items()}
    deadline = time.monotonic() + timeout
    while True:
        served = await api_accounts(api)
        if {key: state["version"] for key, state in served.items()} == wanted:
            return served
        assert time.monotonic() < deadline, f"api did not catch up:\n{api.log_tail()}"
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Attempt:
    """One POST: the event it carried, the HTTP status (0: no answer) and when it ran."""

    event_id: str
    status: int
    started: float
    ended: float


@dataclass
class WebhookStream:
    """Posts events to ingest like Stripe: signed at send time, paced at `rate` per second, one
    customer's deliveries one after another, a 503 (or no answer) retried until acknowledged."""

    url: str
    secret: str
    rate: float
    concurrency: int = 32
    retry_delay: float = 0.25
    give_up_after: float = 180.0
    attempts: list[Attempt] = field(default_factory=list)
    acked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # in ack order
    sent: int = 0

    async def run(self, events: Iterable[dict[str, Any]]) -> None:
        """Send every event; returns when each one is acknowledged or given up on."""
        slots = asyncio.Semaphore(self.concurrency)
        chains: dict[str, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with aiohttp.ClientSession(
            timeout=HTTP_TIMEOUT, connector=aiohttp.TCPConnector(limit=self.concurrency)
        ) as session:
            for index, event in enumerate(events):
                await asyncio.sleep(max(0.0, started + index / self.rate - loop.time()))
                customer = routing_key(event)
                chains[customer] = asyncio.create_task(
                    self._deliver(session, slots, chains.get(customer), customer, event)
                )
                self.sent += 1
            await asyncio.gather(*chains.values())

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        slots: asyncio.Semaphore,
        previous: asyncio.Task[None] | None,
        customer: str,
        event: dict[str, Any],
    ) -> None:
        if previous is not None:
            await previous
        body = orjson.dumps(event, option=orjson.OPT_INDENT_2)
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            async with slots:
                status = await self._post(session, body, event["id"])
            if 200 <= status < 300:
                self.acked.setdefault(customer, []).append(event)
                return
            if status not in (0, 503):
                return  # a designed refusal: never retried, the test sees it in `attempts`
            await asyncio.sleep(self.retry_delay)

    async def _post(self, session: aiohttp.ClientSession, body: bytes, event_id: str) -> int:
        headers = {"Stripe-Signature": sign_payload(body, self.secret)}
        started = time.monotonic()
        status = 0
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        self.attempts.append(Attempt(event_id, status, started, time.monotonic()))
        return status

    def acked_ids(self) -> set[str]:
        return {event["id"] for events in self.acked.values() for event in events}
