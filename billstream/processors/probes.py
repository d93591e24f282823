"""`/healthz`, `/readyz` and `/metrics` on the Faust worker's own web server (WORKER_WEB_PORT)."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from billstream.web import HEALTHY, metrics_page, readiness


def is_ready(app: faust.App) -> bool:
    """Tables recovered and not rebalancing: the worker is consuming its partitions."""
    recovered: bool = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    return recovered and not app.rebalancing and not app.in_recovery


def add_probe_pages(app: faust.App, registry: CollectorRegistry) -> None:
    """Register the probe pages; Faust's own stats/graph/table pages are disabled in app.py."""

    @app.page("/healthz")
    async def healthz(self: View, request: Request) -> Response:
        return self.json(HEALTHY)

    @app.page("/readyz")
    async def readyz(self: View, request: Request) -> Response:
        body, status = readiness(is_ready(app))
        return self.json(body, status=status)

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        body, headers = metrics_page(registry)
        return self.bytes(body, headers=headers)
