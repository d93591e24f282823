"""The read model under faults: the api killed, its PostgreSQL restarted, its disk full.

Each time it must catch up to billing.account-state with no gap and no regression: served state
equals the latest value per key, versions read back never go down, and every account's
transitions are exactly the versions in the topic, each linked to the one before.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from billstream.settings import Settings
from tests.integration.state_stream import (
    VersionWatch,
    assert_read_model_equals_topic,
    produce_steadily,
    state_records,
    topic_truth,
    wait_caught_up,
    watching,
)
from tests.support.children import free_port
from tests.support.postgres import PG_BIN, create_database, temporary_cluster
from tests.support.services import Service
from tests.support.settings import SettingsFactory
from tests.support.worker_process import committed_offsets

CUSTOMERS = 120
VERSIONS = 20  # ~2,500 records per test
RATE = 400.0  # records per second: ~6 s of stream
FAULT_AT = 0.3  # share of the stream applied when the fault hits
CATCH_UP = 90.0  # seconds: covers the api's retry backoff (up to 30 s)


def api_service(settings: Settings, tmp_path: Path) -> Service:
    return Service("api", settings, settings.api_port, tmp_path / "api.log")


async def wait_applied(api: Service, at_least: float) -> None:
    """Until the api has stored `at_least` records (bounded)."""
    for _ in range(600):
        if await api.metric("billstream_api_state_messages_total") >= at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"api applied fewer than {at_least:.0f} records:\n{api.log_tail()}")


async def test_api_killed_mid_stream_resumes_without_gap_or_regression(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path / 'read.db'}",
    )
    values = state_records(CUSTOMERS, VERSIONS, "cus_kill_", seed=5)
    api = api_service(settings, tmp_path)
    watch = VersionWatch(api, [f"cus_kill_{n:05d}" for n in range(0, CUSTOMERS, 12)])
    try:
        api.start()
        await api.wait_ready()
        producing = asyncio.create_task(produce_steadily(settings, values, RATE))
        async with watching(watch):
            await wait_applied(api, FAULT_AT * len(values))
            api.kill()  # mid-batch, between a database commit and its offset commit, or not
            await asyncio.sleep(1.0)
            api.start()
            await api.wait_ready()
            await producing
            latest, _ = await topic_truth(settings)
            await wait_caught_up(api, latest, CATCH_UP)
        assert watch.seen
        assert not watch.regressions()
        await assert_read_model_equals_topic(api, settings)
    finally:
        api.stop()


def pg_ctl(data_dir: str, *args: str) -> None:
    """pg_ctl as the server's user; `restart` starts a stopped server with its last options."""
    argv = [str(PG_BIN / "pg_ctl"), "-D", data_dir, *args]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def restartable_postgres() -> Iterator[tuple[str, str]]:
    """A private PostgreSQL server (never a shared one): (database URL, data directory)."""
    with temporary_cluster() as admin_url:
        with psycopg.connect(admin_url) as connection:
            row = connection.execute("SHOW data_directory").fetchone()
        assert row is not None
        yield create_database(admin_url), str(row[0])


async def test_postgres_restart_mid_stream_turns_readyz_503_then_catches_up(
    kafka_bootstrap: str,
    make_settings: SettingsFactory,
    tmp_path: Path,
    restartable_postgres: tuple[str, str],
) -> None:
    url, data_dir = restartable_postgres
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap, api_port=free_port(), database_url=url
    )
    values = state_records(CUSTOMERS, VERSIONS, "cus_pg_", seed=6)
    api = api_service(settings, tmp_path)
    watch = VersionWatch(api, [f"cus_pg_{n:05d}" for n in range(0, CUSTOMERS, 12)])
    try:
        api.start()
        await api.wait_ready()
        producing = asyncio.create_task(produce_steadily(settings, values, RATE))
        async with watching(watch):
            await wait_applied(api, FAULT_AT * len(values))
            await asyncio.to_thread(pg_ctl, data_dir, "-m", "fast", "-w", "stop")
            await api.wait_status("/readyz", 503, timeout=30)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(pg_ctl, data_dir, "-w", "-l", f"{data_dir}/../log", "restart")
            await api.wait_ready(CATCH_UP)
            await producing
            latest, _ = await topic_truth(settings)
            await wait_caught_up(api, latest, CATCH_UP)
        assert watch.unavailable > 0, "reads never saw the database down"
        assert watch.seen
        assert not watch.regressions()
        await assert_read_model_equals_topic(api, settings)
    finally:
        api.stop()


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    return filler


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (needs root, which CI and this sandbox are)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "billstream-test", str(disk)], check=True
    )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


async def test_full_disk_turns_readyz_503_and_loses_nothing_once_space_returns(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path, tiny_disk: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        api_port=free_port(),
        database_url=f"sqlite:///{tiny_disk / 'read.db'}",
    )
    api = api_service(settings, tmp_path)
    group, topic = f"{settings.billstream_app_id}-api", settings.topic("billing.account-state")
    try:
        api.start()
        await api.wait_ready()
        await produce_steadily(settings, state_records(40, 3, "cus_early_", seed=7), 2000)
        latest, _ = await topic_truth(settings)
        await wait_caught_up(api, latest, CATCH_UP)
        committed = await committed_offsets(kafka_bootstrap, group, topic)

        filler = fill(tiny_disk)
        await produce_steadily(settings, state_records(300, 10, "cus_late_", seed=8), 4000)
        await api.wait_status("/readyz", 503, timeout=60)
        assert await api.metric("billstream_api_write_errors_total") >= 1
        assert "database or disk is full" in api.log_text()
        # Nothing was acknowledged past what the database holds.
        assert await committed_offsets(kafka_bootstrap, group, topic) == committed

        filler.unlink()
        await api.wait_ready(CATCH_UP)
        latest, _ = await topic_truth(settings)
        await wait_caught_up(api, latest, CATCH_UP)
        await assert_read_model_equals_topic(api, settings)
    finally:
        api.stop()


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


async def test_unwritable_database_location_is_not_ready_until_it_becomes_writable(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path, tiny_disk: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        api_port=free_port(),
        database_url=f"sqlite:///{tiny_disk / 'var' / 'read.db'}",
    )
    remount(tiny_disk, "ro")
    api = api_service(settings, tmp_path)
    try:
        api.start()
        await produce_steadily(settings, state_records(60, 5, "cus_ro_", seed=9), 2000)
        await api.wait_status("/healthz", 200)
        await asyncio.sleep(2.0)  # a few migration attempts fail meanwhile
        assert (await api.get("/readyz"))[0] == 503
        assert (await api.get("/accounts/cus_ro_00000"))[0] == 503
        assert "migrating the read model at sqlite:///" in api.log_text()
        assert "Read-only file system" in api.log_text()

        remount(tiny_disk, "rw")
        await api.wait_ready(CATCH_UP)
        latest, _ = await topic_truth(settings)
        await wait_caught_up(api, latest, CATCH_UP)
        await assert_read_model_equals_topic(api, settings)
    finally:
        api.stop()
