"""The listening site accepts every queued connection at one wake-up, on uvloop too."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator
from typing import cast

import aiohttp
import pytest
import uvloop
from aiohttp import web

from billstream.listener import RESOURCE_PAUSE, GreedyListener, GreedyTCPSite


class Counting(asyncio.Protocol):
    def __init__(self, made: list[Counting]) -> None:
        made.append(self)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0), backlog=256)
    sock.setblocking(False)
    yield sock
    sock.close()


def _connect(port: int, count: int) -> list[socket.socket]:
    """Connections the kernel completes (and queues) without the server accepting them."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


def test_one_wake_up_accepts_every_queued_connection(listening: socket.socket) -> None:
    async def scenario() -> tuple[int, int]:
        made: list[Counting] = []
        listener = GreedyListener(
            asyncio.get_running_loop(), listening, lambda: Counting(made), batch=1024
        )
        clients = _connect(listening.getsockname()[1], 60)
        try:
            accepted = listener.accept_queued()  # what one readable event does
            for _ in range(5):  # each connection's setup task runs
                await asyncio.sleep(0)
            return accepted, len(made)
        finally:
            listener.close()
            for client in clients:
                client.close()

    # uvloop on its own accepts one connection per loop iteration: the case this is for.
    assert uvloop.run(scenario()) == (60, 60)


def test_a_wake_up_accepts_at_most_the_batch(listening: socket.socket) -> None:
    async def scenario() -> list[int]:
        listener = GreedyListener(asyncio.get_running_loop(), listening, asyncio.Protocol, batch=25)
        clients = _connect(listening.getsockname()[1], 60)
        try:
            return [listener.accept_queued() for _ in range(4)]
        finally:
            listener.close()
            for client in clients:
                client.close()

    assert uvloop.run(scenario()) == [25, 25, 10, 0]


def test_the_site_serves_the_app_and_closes_its_socket_on_cleanup() -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def scenario() -> tuple[list[str], bool]:
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = GreedyTCPSite(runner, "127.0.0.1", 0, backlog=128)
        await site.start()
        url = f"http://127.0.0.1:{site.port}/"
        async with aiohttp.ClientSession() as session:
            # Many at once: each on its own connection, all of them accepted and answered.
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as fresh:
                answers = await asyncio.gather(*(_text(fresh, url) for _ in range(50)))
            await runner.cleanup()
            try:
                await _text(session, url)
            except aiohttp.ClientConnectionError:
                refused = True
            else:
                refused = False
        return answers, refused

    answers, refused = uvloop.run(scenario())
    assert answers == ["hello"] * 50
    assert refused


async def _text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return await response.text()


class OutOfDescriptors:
    """A listening socket whose accept fails as it does with no file descriptor left."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.accepts = 0

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        self.accepts += 1
        raise OSError(errno.EMFILE, "Too many open files")

    def close(self) -> None:
        self.real.close()


def test_an_accept_out_of_resources_pauses_instead_of_spinning(listening: socket.socket) -> None:
    async def scenario() -> tuple[int, int, int]:
        sock = cast(socket.socket, OutOfDescriptors(listening))
        clients = _connect(listening.getsockname()[1], 1)  # the socket stays readable
        listener = GreedyListener(asyncio.get_running_loop(), sock, asyncio.Protocol, batch=8)
        try:
            accepted = listener.accept_queued()
            for _ in range(3):  # loop iterations in which a watched, readable socket would fire
                await asyncio.sleep(0)
            during_pause = cast(OutOfDescriptors, sock).accepts
            await asyncio.sleep(RESOURCE_PAUSE * 2)
            return accepted, during_pause, cast(OutOfDescriptors, sock).accepts
        finally:
            listener.close()
            for client in clients:
                client.close()

    accepted, during_pause, after = uvloop.run(scenario())
    assert (accepted, during_pause) == (0, 1)  # no retry while paused
    assert after > 1  # then it tries again
