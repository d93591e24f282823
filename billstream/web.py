"""Pieces every aiohttp service shares: liveness/readiness/metrics routes and a run loop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from billstream.listener import GreedyTCPSite

ReadyCheck = Callable[[], bool | Awaitable[bool]]

log = logging.getLogger(__name__)

# Longer than the 60 s idle timeout of common proxies and load balancers, which then close first.
IDLE_TIMEOUT = 75.0
# Connections the kernel queues before the loop accepts them (aiohttp's default: 128). A burst of
# new connections (a sender opening more to keep up) beyond it overflows the accept queue, and
# the clients see resets; the kernel caps it at net.core.somaxconn. It is also the most
# accepted at one wake-up (listener.py).
LISTEN_BACKLOG = 4096


# The probe answers of every service, the worker's Faust pages included (processors/probes.py).
HEALTHY: dict[str, str] = {"status": "ok"}


def readiness(ok: bool) -> tuple[dict[str, str], int]:
    """`/readyz`'s body and status."""
    return ({"status": "ready"}, 200) if ok else ({"status": "not_ready"}, 503)


def metrics_page(registry: CollectorRegistry) -> tuple[bytes, dict[str, str]]:
    """`/metrics`' body and headers (Prometheus text format)."""
    return generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST}


def add_probe_routes(app: web.Application, registry: CollectorRegistry, ready: ReadyCheck) -> None:
    """`/healthz` (process up), `/readyz` (dependencies usable), `/metrics` (Prometheus text)."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(HEALTHY)

    async def readyz(_: web.Request) -> web.Response:
        result = ready()
        body, status = readiness(await result if inspect.isawaitable(result) else result)
        return web.json_response(body, status=status)

    async def metrics(_: web.Request) -> web.Response:
        body, headers = metrics_page(registry)
        return web.Response(body=body, headers=headers)

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
    site = GreedyTCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
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
