"""Pieces every aiohttp service shares: liveness/readiness/metrics routes and a run loop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

ReadyCheck = Callable[[], bool | Awaitable[bool]]

log = logging.getLogger(__name__)

# Longer than the 60 s idle timeout of common proxies and load balancers, which then close first.
IDLE_TIMEOUT = 75.0


def add_probe_routes(app: web.Application, registry: CollectorRegistry, ready: ReadyCheck) -> None:
    """`/healthz` (process up), `/readyz` (dependencies usable), `/metrics` (Prometheus text)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        result = ready()
        ok = await result if inspect.isawaitable(result) else result
        return web.json_response(
            {"status": "ready" if ok else "not_ready"}, status=200 if ok else 503
        )

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def serve_until_stopped(
    app: web.Application,
    port: int,
    host: str = "127.0.0.1",
    idle_timeout: float = IDLE_TIMEOUT,
) -> None:
    """Serve `app` on `host:port` until SIGINT/SIGTERM, then shut down gracefully (cleanup
    contexts run). Callers pass their service's `*_HOST` setting.

    `idle_timeout` closes a connection that sends no complete request head for that long, from
    its opening or its previous response: aiohttp's default (about an hour) lets slow clients
    that trickle headers hold connections that long.
    """
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening on http://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
