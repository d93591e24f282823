"""One server of the ingest benchmark: `bare`, `ingest` (librdkafka) or `ingest-aiokafka`.

`bare` is the baseline: an aiohttp handler that reads the body and answers 200, with no
verification and no Kafka, served exactly like ingest (same runner, no access log).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging

from aiohttp import web

from billstream.ingest.app import WEBHOOK_PATH, create_app
from billstream.settings import load_settings
from billstream.web import serve_until_stopped

QUEUED = b'{"status":"queued"}'


def bare_app() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=QUEUED, content_type="application/json")

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, handle)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "ingest", "ingest-aiokafka"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kind == "bare":
        app = bare_app()
    else:
        settings = load_settings()
        publisher = None
        if args.kind == "ingest-aiokafka":
            from bench.ingest_aiokafka import AiokafkaPublisher

            publisher = AiokafkaPublisher(settings)
        app = create_app(settings, publisher=publisher)
    gc.freeze()  # as `billstream ingest` does (for every kind, so the baseline gets it too)
    asyncio.run(serve_until_stopped(app, args.port, host="127.0.0.1"))


if __name__ == "__main__":
    main()
