"""The publish timeout for every in-flight webhook with one timer, not one timer per request."""

from __future__ import annotations

import asyncio
from collections import deque

from billstream.ingest.publisher import PublishError


class Deadlines:
    """Fails futures still pending `timeout` seconds after `watch`, checked every `tick`.

    The timeout is the same for every request, so deadlines arrive in order: a FIFO queue and a
    sweep of its head replace per-request `asyncio.timeout` timers (heap pushes and cancels).
    Futures fail between `timeout - tick` and `timeout` after they were watched.
    """

    def __init__(self, timeout: float) -> None:
        self._tick = min(0.05, timeout / 10)
        self._wait = timeout - self._tick
        self._timeout = timeout
        self._pending: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[None]) -> None:
        loop = future.get_loop()
        self._pending.append((loop.time() + self._wait, future))
        if self._timer is None:
            self._timer = loop.call_later(self._tick, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        pending = self._pending
        while pending:
            deadline, future = pending[0]
            if not future.done():
                if deadline > now:
                    break
                future.set_exception(PublishError(f"not acknowledged within {self._timeout:g} s"))
            pending.popleft()
        if pending:
            self._timer = loop.call_later(self._tick, self._sweep, loop)
