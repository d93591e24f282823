"""Entry point of the read API process (skeleton: probes only, filled in by its issue)."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web
from prometheus_client import CollectorRegistry

from billstream.settings import Settings
from billstream.web import add_probe_routes, serve_until_stopped


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> web.Application:
    app = web.Application()
    add_probe_routes(app, registry or CollectorRegistry(), ready=lambda: True)
    return app


def run(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(serve_until_stopped(create_app(settings), settings.api_port))
    return 0
