"""`billstream api`: the read model consumer and the read API in one process."""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor

from billstream.api.app import create_app
from billstream.api.consumer import StateConsumer
from billstream.api.metrics import ApiMetrics
from billstream.api.service import read_model_service
from billstream.api.store import Store
from billstream.settings import Settings
from billstream.web import serve_until_stopped


def run(settings: Settings, args: argparse.Namespace) -> int:
    metrics = ApiMetrics.create()
    store = Store(settings.database_url)
    # One writer thread: batches apply in order, and reads never wait behind a batch.
    writer = ThreadPoolExecutor(1, thread_name_prefix="read-model-writer")
    consumer = StateConsumer(settings, store, metrics, writer)
    app = create_app(settings, store, metrics=metrics, consumer=consumer)
    app.cleanup_ctx.append(read_model_service(settings, store, consumer))
    try:
        asyncio.run(serve_until_stopped(app, settings.api_port))
    finally:
        writer.shutdown(wait=False, cancel_futures=True)
    return 0
