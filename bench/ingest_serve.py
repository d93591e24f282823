"""One server of the ingest benchmark: `bare`, `bare-asyncio`, `ingest` or `ingest-aiokafka`.

`bare` is the baseline: an aiohttp handler that reads the body and answers 200, with no
verification and no Kafka, served exactly like ingest (`billstream.ingest.main.serve`: same
runner, no access log, gc.freeze, the same event loop). `bare-asyncio` is the same handler on
asyncio's own loop, as a plain aiohttp app runs (the issue's reference figure of ~19k req/s).
`--loop asyncio` serves any of them on asyncio's own loop instead of ingest's (uvloop), to
measure what the loop is worth. The first line on stdout names the loop actually running
(`loop <module>.<class>`). Every server also runs a loop-lag probe (a 5 ms timer,
`GET /bench/loop-lag`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

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


class LoopLag:
    """How late a 5 ms timer fires: how long the event loop was held up, by callbacks (long
    handlers, GC, delivery reports) or by the OS not running it. `GET /bench/loop-lag` returns
    the quantiles since the previous call (the bench reads it around the fixed-rate run)."""

    PERIOD = 0.005

    def __init__(self) -> None:
        self.late: list[float] = []

    async def start(self, _: web.Application) -> None:
        loop = asyncio.get_running_loop()
        self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_later(self.PERIOD, self._tick, loop, time.perf_counter() + self.PERIOD)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self.late.append(max(0.0, time.perf_counter() - due))
        self._schedule(loop)

    async def read(self, _: web.Request) -> web.Response:
        late, self.late = sorted(self.late), []
        if not late:
            return web.json_response({"ticks": 0})
        return web.json_response(
            {
                "ticks": len(late),
                "p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1000, 2),
                "max_ms": round(late[-1] * 1000, 2),
                "over_5ms": sum(value > 0.005 for value in late),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "bare-asyncio", "ingest", "ingest-aiokafka"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["ingest", "asyncio"], default="ingest")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kind in ("bare", "bare-asyncio"):
        app = bare_app()
    else:
        settings = load_settings()
        publisher = None
        if args.kind == "ingest-aiokafka":
            from bench.ingest_aiokafka import AiokafkaPublisher

            publisher = AiokafkaPublisher(settings)
        app = create_app(settings, publisher=publisher)
    app.on_startup.append(_announce_loop)
    lag = LoopLag()
    app.on_startup.append(lag.start)
    app.router.add_get("/bench/loop-lag", lag.read)
    on_asyncio = args.loop == "asyncio" or args.kind == "bare-asyncio"
    loop_factory = asyncio.new_event_loop if on_asyncio else ingest_main.new_event_loop
    ingest_main.serve(app, args.port, host="127.0.0.1", loop_factory=loop_factory)


if __name__ == "__main__":
    main()
