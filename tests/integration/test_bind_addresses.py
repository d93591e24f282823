"""INGEST_HOST, WORKER_WEB_HOST, API_HOST, DRIFT_AUDIT_HOST, RESOLVER_HOST: each service listens
on the address it is told, only.

127.0.0.2 is loopback too on Linux, so "told 127.0.0.2" and "not on 127.0.0.1" are both
checkable without leaving the machine.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from billstream.settings import Settings
from tests.support.children import free_port, settings_env
from tests.support.settings import SettingsFactory

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "ingest": ("ingest_host", "ingest_port"),
    "worker": ("worker_web_host", "worker_web_port"),
    "api": ("api_host", "api_port"),
    "drift-audit": ("drift_audit_host", "drift_audit_port"),
    "resolve": ("resolver_host", "resolver_port"),
}
START_TIMEOUT = 90.0


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def start(service: str, settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "billstream.cli", service],
            cwd=ROOT,
            env=settings_env(settings, PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def check_running(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(log.read_text(errors="replace")[-3000:])


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            check_running(proc, log)
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"{url} not healthy after {START_TIMEOUT:.0f} s"
            await asyncio.sleep(0.3)


@pytest.mark.parametrize(
    ("service", "told", "elsewhere"),
    [
        ("ingest", "127.0.0.2", "127.0.0.1"),
        ("worker", "127.0.0.2", "127.0.0.1"),
        ("api", "127.0.0.2", "127.0.0.1"),
        ("drift-audit", "127.0.0.2", "127.0.0.1"),
        ("resolve", "127.0.0.2", "127.0.0.1"),
        ("ingest", None, "127.0.0.2"),  # the default: loopback 127.0.0.1 only
    ],
)
async def test_a_service_binds_only_where_it_is_told(
    service: str,
    told: str | None,
    elsewhere: str,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    host_field, port_field = FIELDS[service]
    port = free_port()
    overrides: dict[str, object] = {port_field: port}
    if told is not None:
        overrides[host_field] = told
    if service == "drift-audit":  # something to do; its Stripe calls fail fast (nobody listens)
        overrides.update(
            stripe_api_key="sk_test_bind",
            stripe_api_base=f"http://127.0.0.1:{free_port()}",
            undelivered_recovery_interval_seconds=3600,
        )
    if service == "resolve":  # needs a key; nothing on stripe.thin-events, so no call is made
        overrides.update(stripe_api_key="sk_test_bind")
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        worker_data_dir=str(tmp_path / "worker"),
        **overrides,
    )
    host = getattr(settings, host_field)
    assert host == (told or "127.0.0.1")
    log = tmp_path / f"{service}.log"
    proc = start(service, settings, log)
    try:
        await wait_healthy(proc, f"http://{host}:{port}/healthz", log)
        assert not accepts(elsewhere, port), f"{service} also listens on {elsewhere}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
