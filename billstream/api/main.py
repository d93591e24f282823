"""`billstream api`: the read model consumer and the read API in one process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from billstream.api.app import create_app
from billstream.api.auth import configuration_error
from billstream.api.billing import BillingService
from billstream.api.billing.catalog_events import catalog_watch_service
from billstream.api.consumer import StateConsumer
from billstream.api.metrics import ApiMetrics
from billstream.api.service import read_model_service
from billstream.api.store import Store
from billstream.settings import Settings
from billstream.web import serve_until_stopped


def build_app(settings: Settings, metrics: ApiMetrics | None = None) -> web.Application:
    """The whole service: HTTP app plus, for its lifetime, migration and consumer."""
    metrics = metrics if metrics is not None else ApiMetrics.create()
    store = Store(settings.database_url)
    # One writer thread: batches apply in order, and reads never wait behind a batch.
    writer = ThreadPoolExecutor(1, thread_name_prefix="read-model-writer")
    consumer = StateConsumer(settings, store, metrics, writer)
    billing = BillingService.create(settings, metrics.registry)
    app = create_app(settings, store, metrics=metrics, consumer=consumer, billing=billing)
    app.cleanup_ctx.append(read_model_service(settings, store, consumer))
    if billing.gateway is not None:  # no Stripe key, no catalog to keep current
        app.cleanup_ctx.append(catalog_watch_service(settings, billing.catalog))

    async def stop_writer(_: web.Application) -> None:
        writer.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(stop_writer)
    return app


def run(settings: Settings, args: argparse.Namespace) -> int:
    error = configuration_error(settings)
    if error is not None:
        print(f"billstream: invalid configuration: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve_until_stopped(build_app(settings), settings.api_port, settings.api_host))
    return 0
