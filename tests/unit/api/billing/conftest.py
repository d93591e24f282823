"""The billing actions under test: the api app over stripe-mock, through a `FakeStripe`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.api.app import create_app
from billstream.api.billing import BillingService
from billstream.api.metrics import ApiMetrics
from billstream.api.store import Store
from billstream.settings import Settings
from tests.support import factories as f
from tests.support.children import TEST_API_TOKEN
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import client_for
from tests.support.stripe_billing import FakeStripe, catalog_price

Client = TestClient[Any, Any]
AUTH = {"Authorization": f"Bearer {TEST_API_TOKEN}"}
PLAN_MAP = (
    "pro_monthly=PRO,pro_yearly=PRO,business_monthly=BUSINESS,price_business_legacy=BUSINESS,"
    "price_biz_y=BUSINESS"
)
PERIOD_END = 1_900_000_000


def prices() -> list[dict[str, Any]]:
    return [
        catalog_price("price_pro_m", "pro_monthly", "month", 2900),
        catalog_price("price_pro_y", "pro_yearly", "year", 29000),
        catalog_price("price_biz_m", "business_monthly", "month", 9900),
        catalog_price("price_biz_y", None, "year", 99000),  # mapped by id only
    ]


def subscription(
    sub_id: str = "sub_alice", price: str = "price_pro_m", **fields: Any
) -> dict[str, Any]:
    """A live subscription on `price` (one of `prices()`), basil shape."""
    found = {p["id"]: p for p in prices()}[price]
    sub = f.subscription(
        sub_id=sub_id,
        customer="cus_alice",
        prices=[{**found, "product": found["product"]["id"]}],
        current_period_end=PERIOD_END,
        period="items",
    )
    sub.update(fields)
    return sub


@dataclass
class Billing:
    client: Client
    stripe: FakeStripe
    service: BillingService
    registry: CollectorRegistry
    settings: Settings
    store: Store

    def counted(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def post(
        self, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Any:
        response = await self.client.post(path, json=body, headers=headers)
        text = await response.text()
        assert response.status == status, text
        assert response.content_type == "application/json"
        return await response.json()


BillingFactory = Callable[..., Awaitable[Billing]]


@pytest.fixture
def make_billing(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    sqlite_store: Store,
    stripe_mock: str,
) -> BillingFactory:
    async def factory(
        stripe: FakeStripe | None = None, *, loaded: bool = True, **overrides: Any
    ) -> Billing:
        values: dict[str, Any] = {
            "stripe_api_key": "sk_test_billingSecret123",
            "stripe_api_base": stripe_mock,
            "billing_plan_map": PLAN_MAP,
        }
        settings = make_settings(**{**values, **overrides})
        fake = stripe if stripe is not None else FakeStripe(prices(), [subscription()])
        metrics = ApiMetrics.create()
        service = BillingService.create(settings, metrics.registry, client_for(settings, fake))
        app = create_app(settings, sqlite_store, metrics=metrics, billing=service)
        client = await aiohttp_client(app, headers=AUTH)
        for _ in range(200 if loaded else 0):
            if service.catalog.current is not None:
                break
            await asyncio.sleep(0.05)
        assert service.catalog.current is not None or not loaded, "catalog not loaded"
        return Billing(client, fake, service, metrics.registry, settings, sqlite_store)

    return factory


@pytest.fixture
async def billing(make_billing: BillingFactory) -> Billing:
    return await make_billing()
