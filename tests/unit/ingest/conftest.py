"""The real ingest app behind aiohttp's test server, with an in-process publisher.

Every async test here runs twice: on uvloop, the loop `billstream ingest` serves on, and on
asyncio's own loop (aiohttp's test tools and any embedding application may use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.ingest import main
from billstream.ingest.app import WEBHOOK_PATH, create_app
from billstream.settings import Settings
from billstream.stripe_signing import sign_payload
from tests.support.settings import SettingsFactory
from tests.unit.ingest.support import CONNECT_SECRET, SECRET, FakePublisher


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": main.new_event_loop, "asyncio": asyncio.new_event_loop}


@dataclass
class Ingest:
    """A running app with its publisher, registry and settings, plus a signed-POST helper."""

    client: TestClient[Any, Any]
    publisher: FakePublisher
    registry: CollectorRegistry
    settings: Settings

    async def post(
        self,
        body: bytes,
        signature: str | None = "sign",
        secret: str = SECRET,
        path: str = WEBHOOK_PATH,
    ) -> tuple[int, dict[str, Any]]:
        """POST `body`; `signature="sign"` signs it now with `secret`, None sends no header."""
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            signature = sign_payload(body, secret)
        if signature is not None:
            headers["Stripe-Signature"] = signature
        response = await self.client.post(path, data=body, headers=headers)
        return response.status, await response.json()


IngestFactory = Callable[..., Awaitable[Ingest]]


@pytest.fixture
def make_ingest(aiohttp_client: AiohttpClient, make_settings: SettingsFactory) -> IngestFactory:
    async def factory(publisher: FakePublisher | None = None, **overrides: Any) -> Ingest:
        overrides.setdefault("stripe_connect_webhook_secrets", CONNECT_SECRET)
        settings = make_settings(**overrides)
        publisher = publisher if publisher is not None else FakePublisher()
        registry = CollectorRegistry()
        app = create_app(settings, registry=registry, publisher=publisher)
        client = await aiohttp_client(app)
        return Ingest(client, publisher, registry, settings)

    return factory


@pytest.fixture
async def ingest(make_ingest: IngestFactory) -> Ingest:
    return await make_ingest()
