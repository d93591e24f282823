"""The billing actions' shared parts, built once per app: Stripe gateway, catalog, metrics.

Without STRIPE_API_KEY the routes still exist (the OpenAPI document does not change with the
configuration) but answer 503 `billing_unavailable`, so a read-only deployment needs no key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import stripe
from aiohttp import web
from prometheus_client import CollectorRegistry

from billstream.api.billing.catalog import Catalog, CatalogCache, load_catalog
from billstream.api.billing.errors import BillingError
from billstream.api.billing.gateway import StripeGateway
from billstream.api.billing.idempotency import ReplayCache
from billstream.api.billing.metrics import BillingMetrics
from billstream.api.billing.plans import PlanBook
from billstream.settings import Settings
from billstream.stripe_calls import INTERACTIVE, ONCE, StripeCalls, shared_limiter
from billstream.stripe_client import make_stripe_client

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


@dataclass
class BillingService:
    settings: Settings
    book: PlanBook
    gateway: StripeGateway | None
    catalog: CatalogCache
    metrics: BillingMetrics
    replays: ReplayCache

    @classmethod
    def create(
        cls,
        settings: Settings,
        registry: CollectorRegistry,
        client: stripe.StripeClient | None = None,
    ) -> BillingService:
        """`client`: tests pass a recording one; else one from the settings, if a key is set."""
        key = settings.stripe_api_key
        # Retries are stripe_calls' (INTERACTIVE) on the client built here; a client handed in
        # (tests' recording transport) keeps its own: one attempt, as before.
        policy = ONCE if client is not None else INTERACTIVE
        if client is None and key is not None and key.get_secret_value():
            client = make_stripe_client(settings, max_network_retries=0)
        limiter = shared_limiter(settings.stripe_api_rate)
        gateway = None if client is None else StripeGateway(client, StripeCalls(limiter, policy))
        book = PlanBook.from_settings(settings)

        async def load() -> Catalog:
            if gateway is None:
                raise unavailable()
            return await gateway.run(load_catalog, book)

        return cls(
            settings,
            book,
            gateway,
            CatalogCache(load),
            BillingMetrics.create(registry),
            ReplayCache(),
        )

    def stripe(self) -> StripeGateway:
        if self.gateway is None:
            raise unavailable()
        return self.gateway

    def current_catalog(self) -> Catalog:
        self.stripe()
        if self.catalog.current is None:
            raise BillingError(
                503,
                "catalog_unavailable",
                "the catalog is not loaded from Stripe yet",
                retry_after=1,
            )
        return self.catalog.current

    def context(self) -> CleanupContext:
        """Keeps the catalog fresh for the app's lifetime (when Stripe is configured)."""

        async def run(_: web.Application) -> AsyncIterator[None]:
            task = None
            if self.gateway is not None:
                interval = float(self.settings.billing_catalog_refresh_seconds)
                task = asyncio.create_task(self.catalog.keep_fresh(interval))
            yield
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.gateway is not None:
                self.gateway.close()

        return run


def unavailable() -> BillingError:
    return BillingError(
        503, "billing_unavailable", "billing actions need STRIPE_API_KEY", retry_after=60
    )
