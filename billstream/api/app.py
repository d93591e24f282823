"""`create_app`: the read API over a Store; tests and benchmarks build their own."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import orjson
from aiohttp import web

from billstream.api import openapi
from billstream.api.auth import auth_middleware
from billstream.api.billing import BillingService, add_billing_routes
from billstream.api.metrics import ApiMetrics
from billstream.api.routes import (
    EXECUTOR,
    METRICS,
    PLATFORM_ACCOUNT,
    STORE,
    add_routes,
    errors_and_metrics,
)
from billstream.api.store import Store
from billstream.settings import Settings
from billstream.web import add_probe_routes

READ_THREADS = 4
PING_TIMEOUT_SECONDS = 2.0


class ConsumerStatus(Protocol):
    """What readiness needs to know of the consumer."""

    @property
    def assigned(self) -> bool: ...

    @property
    def write_error(self) -> str | None: ...


def create_app(
    settings: Settings,
    store: Store,
    *,
    metrics: ApiMetrics | None = None,
    consumer: ConsumerStatus | None = None,
    billing: BillingService | None = None,
) -> web.Application:
    """The aiohttp app; without a consumer, readiness is the database alone (tests, bench).

    `billing`: the /billing/ actions' Stripe side (tests pass one with a recording client);
    by default built from the settings.

    Raises `AuthNotConfigured` without `API_TOKENS` unless `API_AUTH=none`.
    """
    require_token = auth_middleware(settings)
    metrics = metrics if metrics is not None else ApiMetrics.create()
    executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="read-model")
    guard = [] if require_token is None else [require_token]
    app = web.Application(middlewares=[errors_and_metrics, *guard])
    app[STORE] = store
    app[PLATFORM_ACCOUNT] = settings.stripe_account_id or ""
    app[EXECUTOR] = executor
    app[METRICS] = metrics

    async def ready() -> bool:
        if not store.schema_ready.is_set():
            return False
        if consumer is not None and (consumer.write_error is not None or not consumer.assigned):
            return False
        ping = asyncio.get_running_loop().run_in_executor(executor, store.ping)
        try:
            await asyncio.wait_for(ping, PING_TIMEOUT_SECONDS)
        except Exception:
            return False
        return True

    document = orjson.dumps(
        openapi.document(settings.api_metrics_auth, settings.billing_plan_order)
    )

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    async def shutdown(_: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    add_routes(app)
    add_billing_routes(app, billing or BillingService.create(settings, metrics.registry))
    add_probe_routes(app, metrics.registry, ready)
    app.router.add_get("/openapi.json", openapi_json, allow_head=False)
    app.on_cleanup.append(shutdown)
    return app
