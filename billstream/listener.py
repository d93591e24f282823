"""A listening site that accepts every queued connection each time the socket is readable.

uvloop's libuv accepts one connection per loop iteration (libuv/libuv#3696). On a loop busy with
thousands of requests an iteration takes tens of milliseconds, so a burst of new connections
(a sender opening more to keep up) waits in the kernel's accept queue for as long as the sender
waits: an overload run at 1.5 times capacity had ~2,700 connections queued there for 30 s,
with requests written and unanswered, where neither load-shedding signal could see them.
asyncio's own selector loop accepts up to its backlog at a time; this does so on any loop, so
that a connection is read, and answered (if need be with a fast 503), soon after it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# After an accept fails for want of resources (EMFILE, ENOBUFS), the pause before the next try:
# retrying at once would spin on the same error while the queue stays full.
RESOURCE_PAUSE = 0.1


class GreedyListener(asyncio.AbstractServer):
    """Accepts up to `batch` queued connections per wake-up and hands each to the factory."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        batch: int,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._batch = batch
        self._connecting: set[asyncio.Task[Any]] = set()
        self._serving = True
        self._closed = loop.create_future()
        loop.add_reader(sock.fileno(), self.accept_queued)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._serving else ()

    def accept_queued(self) -> int:
        """Accept what the kernel has queued (at most `batch`); the number accepted."""
        accepted = 0
        while accepted < self._batch:
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionAbortedError:  # the client gave up while queued: the next one
                continue
            except OSError as error:  # out of descriptors or buffers: wait, do not spin
                log.warning("accept failed, pausing %.1f s: %s", RESOURCE_PAUSE, error)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(RESOURCE_PAUSE, self._resume)
                break
            accepted += 1
            self._connect(connection)
        return accepted

    def _connect(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, connection))
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("accepted connection dropped: %r", task.exception())

    def _resume(self) -> None:
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self.accept_queued)

    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._closed.set_result(None)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Serving starts with construction."""

    async def serve_forever(self) -> None:
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """The connections being set up finish (or fail) first; served ones the runner ends."""
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)


class GreedyTCPSite(web.BaseSite):
    """aiohttp's TCPSite, with connections accepted by a `GreedyListener`."""

    __slots__ = ("_host", "_listener", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, backlog: int) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._listener: GreedyListener | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the kernel's choice for 0)."""
        if self._listener is not None and self._listener.sockets:
            port: int = self._listener.sockets[0].getsockname()[1]
            return port
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        address = (self._host, self._port)
        sock = socket.create_server(address, family=family, backlog=self._backlog)
        sock.setblocking(False)
        try:
            self._listener = GreedyListener(
                asyncio.get_running_loop(), sock, server, batch=self._backlog
            )
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()
            raise
        self._server = self._listener
