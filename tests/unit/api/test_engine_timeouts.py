"""A PostgreSQL server that accepts TCP but never answers fails the connect in bounded time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from billstream.api import engines

CONNECT_TIMEOUT = 2  # libpq's minimum
SLACK = 8.0  # an upper bound, not a measurement


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listening socket that never accepts: the kernel completes the handshake, then silence."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    "make_engine", [engines.writer_engine, lambda url: engines.reader_engine(url, 1)]
)
def test_connect_to_a_silent_postgres_gives_up(
    silent_server: int, monkeypatch: pytest.MonkeyPatch, make_engine: object
) -> None:
    monkeypatch.setitem(engines.POSTGRES_CONNECT_ARGS, "connect_timeout", CONNECT_TIMEOUT)
    url = make_url(f"postgresql+psycopg://u:p@127.0.0.1:{silent_server}/db?sslmode=disable")
    engine = make_engine(url)  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(OperationalError, match="timeout"):
        engine.connect()
    assert time.monotonic() - started < CONNECT_TIMEOUT + SLACK


def test_sqlite_gets_no_postgres_arguments(tmp_path: Path) -> None:
    engine = engines.writer_engine(make_url(f"sqlite:///{tmp_path / 'read.db'}"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select 1").scalar() == 1
