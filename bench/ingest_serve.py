"""One server of the ingest benchmark: `bare`, `ingest` (librdkafka) or `ingest-aiokafka`.

`bare` is the baseline: an aiohttp handler that reads the body and answers 200, with no
verification and no Kafka, served exactly like ingest (`billstream.ingest.main.serve`: same
runner, no access log, gc.freeze, the same event loop). `--loop asyncio` serves any of them on
asyncio's own loop instead of ingest's (uvloop), to measure what the loop is worth. The first
line on stdout names the loop actually running (`loop <module>.<class>`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from billstream.ingest import main as ingest_main
from billstream.ingest.app import WEBHOOK_PATH, create_app
from billstream.settings import load_settings

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


async def _announce_loop(_: web.Application) -> None:
    loop = asyncio.get_running_loop()
    print(f"loop {type(loop).__module__}.{type(loop).__qualname__}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "ingest", "ingest-aiokafka"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["ingest", "asyncio"], default="ingest")
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
    app.on_startup.append(_announce_loop)
    loop_factory = asyncio.new_event_loop if args.loop == "asyncio" else ingest_main.new_event_loop
    ingest_main.serve(app, args.port, host="127.0.0.1", loop_factory=loop_factory)


if __name__ == "__main__":
    main()
