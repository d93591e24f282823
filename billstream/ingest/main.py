"""`billstream ingest`: serve the webhook intake until SIGINT/SIGTERM, on uvloop."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Callable

import uvloop
from aiohttp import web

from billstream.ingest.app import create_app
from billstream.settings import Settings
from billstream.web import IDLE_TIMEOUT, serve_until_stopped

# The collector's thresholds while serving (young, middle, old; Python's: 700, 10, 10). Beyond
# capacity thousands of requests are alive at once, every young collection walks them and each
# full one all of them: at 1.5 times capacity the defaults spent 36 % of the process's time in
# the collector (over half its CPU), this 6 % (docs/ingest.md, "Overload"). Only reference
# cycles need the collector at all (reference counting frees the rest): RSS stayed flat (92 MiB
# over 5 minutes at 2,500/s; 166 MiB at most under that overload, against 169 with the defaults).
GC_THRESHOLDS = (50_000, 20, 10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default: INGEST_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: INGEST_PORT)")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop ingest serves on: uvloop (libuv), whose C transports, timers and callback queue
    cost the event loop thread less per request than asyncio's pure-Python ones."""
    return uvloop.new_event_loop()


def serve(
    app: web.Application,
    port: int,
    host: str,
    idle_timeout: float = IDLE_TIMEOUT,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop,
) -> None:
    """Serve `app` until SIGINT/SIGTERM on a loop from `loop_factory` (the benchmark serves its
    baseline this way too, on the same loop)."""
    # Startup objects (modules, clients, app) live as long as the process: frozen, they are never
    # traversed again, so a full collection no longer stalls every request for ~30 ms (p99).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve_until_stopped(app, port, host=host, idle_timeout=idle_timeout))


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.stripe_webhook_secrets:
        print(
            "billstream: invalid configuration: STRIPE_WEBHOOK_SECRETS: required for ingest",
            file=sys.stderr,
        )
        return 2
    port = settings.ingest_port if args.port is None else args.port
    host = settings.ingest_host if args.host is None else args.host
    # A slow client gets as long for a request's head as ingest gives it for the body.
    serve(create_app(settings), port, host, idle_timeout=settings.ingest_read_timeout)
    return 0
