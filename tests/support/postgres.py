"""A real PostgreSQL server for tests and benchmarks: BILLSTREAM_TEST_DATABASE_URL, or our own.

Our own is a throw-away cluster (initdb + pg_ctl) in a temp dir on a free port, run as the
`postgres` user when we are root (the server refuses root). Under `make test`
(BILLSTREAM_REQUIRE_SERVICES=1) a missing PostgreSQL FAILS the tests; it never skips them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _server_bin() -> Path:
    """BILLSTREAM_PG_BIN, else the newest Debian server (15 on bookworm), else `initdb` on PATH."""
    if os.environ.get("BILLSTREAM_PG_BIN"):
        return Path(os.environ["BILLSTREAM_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    on_path = shutil.which("initdb")
    if found:
        return found[-1].parent
    return Path(on_path).parent if on_path else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _server_bin()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run_as_server_user(*parts: list[str]) -> None:
    argv = [arg for part in parts for arg in part]
    subprocess.run(
        _as_server_user(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@contextlib.contextmanager
def temporary_cluster() -> Iterator[str]:
    """Start a private PostgreSQL cluster; yields its admin URL (`postgresql://...`)."""
    if not (PG_BIN / "initdb").exists():
        raise FileNotFoundError(f"{PG_BIN}/initdb not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="billstream-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    pg_ctl = str(PG_BIN / "pg_ctl")
    try:
        _run_as_server_user(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        )
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(root / "log")
        _run_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start"])
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """A fresh empty database on the server; returns its URL."""
    name = f"billstream_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of a real PostgreSQL server for this test session."""
    external = os.environ.get("BILLSTREAM_TEST_DATABASE_URL")
    if external:
        yield external
        return
    try:
        cluster = temporary_cluster()
        url = cluster.__enter__()
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        message = f"PostgreSQL could not be started: {error} {detail.decode(errors='replace')}"
        if os.environ.get("BILLSTREAM_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database of its own for one test, dropped afterwards."""
    url = create_database(postgres_server)
    yield url
    drop_database(postgres_server, url)
