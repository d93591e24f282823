"""Library logs that would print request bytes or records: malformed requests become one DEBUG
line naming the error; Faust's and mode's DEBUG (which prints sent records) stays off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from billstream.logs import MalformedRequestFilter, configure_logging
from billstream.settings import Settings

MARKER = "PAYLOAD_MARKER_7f3a"


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Any:
    logger = logging.getLogger("aiohttp.server")
    logger.addFilter(log_filter := MalformedRequestFilter())
    caplog.set_level(logging.DEBUG)
    yield caplog
    logger.removeFilter(log_filter)


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}{MARKER} / HTTP/1.1\r\n\r\n",
        f"POST / HTTP/1.1\r\nHost: x\r\nX-Junk: {MARKER * 1000}\r\n\r\n",
        f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1{MARKER}\r\n\r\n",
    ],
    ids=["pipelined garbage", "header too long", "bad content-length"],
)
async def test_malformed_request_is_logged_without_its_bytes(
    aiohttp_server: AiohttpServer, server_log: pytest.LogCaptureFixture, request_bytes: str
) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", ok)
    server = await aiohttp_server(app)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request_bytes.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()

    assert b" 400 " in answer
    records = [r for r in server_log.records if r.name == "aiohttp.server"]
    assert records
    for record in records:
        assert record.levelno == logging.DEBUG
        assert record.exc_info is None
        assert MARKER not in record.getMessage()
    assert any("refused a malformed HTTP request" in r.getMessage() for r in records)


def test_other_server_errors_keep_their_level_and_traceback() -> None:
    try:
        raise RuntimeError("handler bug")
    except RuntimeError:
        record = logging.getLogger("aiohttp.server").makeRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Unhandled exception", (), None
        )
        record.exc_info = sys.exc_info()
    assert MalformedRequestFilter().filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = ("faust", "mode", "aiokafka", "kafka")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger("aiohttp.server").filters.clear()


def test_debug_level_is_billstream_only(restore_logging: None) -> None:
    configure_logging(Settings(_env_file=None, log_level="DEBUG"), "worker")

    assert logging.getLogger("billstream.processors.handler").isEnabledFor(logging.DEBUG)
    for library in ("faust.topics", "faust.agents.agent", "mode.timers", "aiokafka.producer"):
        assert not logging.getLogger(library).isEnabledFor(logging.DEBUG), library
    assert logging.getLogger("faust.worker").isEnabledFor(logging.INFO)


async def test_a_body_that_cannot_be_decoded_is_logged_as_the_clients_fault(
    aiohttp_server: Any, server_log: pytest.LogCaptureFixture
) -> None:
    async def handler(request: web.Request) -> web.Response:
        with contextlib.suppress(web.RequestPayloadError):
            await request.read()
        return web.Response(status=400, text="invalid_payload")

    app = web.Application()
    app.router.add_post("/", handler)
    server = await aiohttp_server(app)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    body = b"not gzip " + MARKER.encode()
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}"
    writer.write(head.encode() + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    await asyncio.sleep(0.1)  # aiohttp logs while it drains the rest, after the answer

    assert b" 400 " in answer
    records = [r for r in server_log.records if r.name == "aiohttp.server"]
    assert records
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in records)
