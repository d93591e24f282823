"""schemathesis against /openapi.json: no 5xx, every response as documented (status, type, body).

The app runs in-process on a free port (its own event loop in a thread); examples are bounded.
The billing actions call stripe-mock, whose fixture subscription's price is mapped to PRO.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from billstream.api.app import create_app
from billstream.api.billing import BILLING
from billstream.api.openapi import document
from billstream.api.store import Store
from billstream.settings import Settings
from tests.support.account_state import make_state
from tests.support.children import TEST_API_TOKEN

MAX_EXAMPLES = 40


# stripe-mock answers every subscription with this price; BUSINESS is any other id.
PLAN_MAP = "price_1PgafmB7WZ01zgkW6dKueIc5=PRO,price_business_conformance=BUSINESS"
PLANS = ("FREE", "PRO", "BUSINESS")


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, stripe_mock: str) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("conformance") / "read-model.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    # cus_123 is the documented example, so the 200 paths are exercised too.
    store.apply(
        [make_state("cus_123", 1), make_state("cus_123", 2, plan="FREE", features=["api_access"])]
    )
    store.apply([make_state(f"cus_{n}", 1, payment_state="past_due") for n in range(5)])
    loop = asyncio.new_event_loop()
    settings = Settings(
        _env_file=None,
        api_tokens=TEST_API_TOKEN,
        stripe_api_key="sk_test_conformance",
        stripe_api_base=stripe_mock,
        billing_plan_map=PLAN_MAP,
    )
    app = create_app(settings, store)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    catalog = app[BILLING].catalog
    for _ in range(200):  # loaded at start-up, in the background
        if catalog.current is not None:
            break
        time.sleep(0.05)
    assert catalog.current is not None
    yield f"http://{host}:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.run_until_complete(runner.cleanup())
    loop.close()
    store.close()


@pytest.fixture
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.from_dict(document(plans=PLANS), base_url=api_url)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_responses_conform_to_the_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate(timeout=10, headers={"Authorization": f"Bearer {TEST_API_TOKEN}"})
