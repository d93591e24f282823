"""A plan change through the billing API ends, once Stripe's webhook for it has gone through
ingest → worker → api, with exactly the state the preview promised.

The actions run in the api app in this process, its Stripe calls validated by stripe-mock and
answered by `FakeStripe` like Stripe would (the subscription is updated by the parameters
sent); the webhook is the one Stripe would send for the change — the returned subscription,
signed — posted to a live ingest, folded by a live worker and served by a live api. The live
api also sees a `price.updated` event through `stripe.events` and refreshes its catalog.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.api.app import create_app
from billstream.api.billing import BillingService
from billstream.api.store import Store
from billstream.stripe_signing import sign_payload
from tests.integration.live_stack import LiveStack, eventually, get_json
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import client_for
from tests.support.stripe_billing import FakeStripe, catalog_price

PLAN_MAP = "pro_monthly=PRO,business_monthly=BUSINESS"
START = 1_767_225_600
PROMISED = ("plan", "interval", "pending_plan", "cancel_at_period_end")


async def post_webhook(stack: LiveStack, event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_test_secret")}
    url = f"http://127.0.0.1:{stack.settings.ingest_port}/webhooks/stripe"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        assert (await r.json())["status"] == "queued"


async def served(stack: LiveStack, customer: str) -> dict[str, Any] | None:
    url = f"http://127.0.0.1:{stack.settings.api_port}/accounts/{customer}"
    body = await get_json(url, stack.api_headers)
    return body if "customer_id" in body else None


async def until_served(stack: LiveStack, customer: str, expected: dict[str, Any]) -> None:
    async def matches() -> bool:
        account = await served(stack, customer)
        return account is not None and {k: account[k] for k in PROMISED} == expected

    await eventually(matches, f"{customer} served as {expected}", timeout=30)


async def test_a_plan_change_ends_with_the_state_its_preview_promised(
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    stripe_mock: str,
    unique_id: str,
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_e2e",
        stripe_api_base=stripe_mock,
        billing_plan_map=PLAN_MAP,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
    )
    customer, sub_id = f"cus_e2e{unique_id}", f"sub_e2e{unique_id}"
    pro, business = (
        catalog_price("price_pro_m", "pro_monthly", "month", 2900),
        catalog_price("price_biz_m", "business_monthly", "month", 9900),
    )
    subscription = f.subscription(
        sub_id=sub_id,
        customer=customer,
        prices=[{**pro, "product": "prod_pro"}],
        created=START,
        period="items",
    )
    fake = FakeStripe([pro, business], [subscription])
    store = Store(f"sqlite:///{tmp_path}/actions.db")
    store.migrate()
    service = BillingService.create(settings, CollectorRegistry(), client_for(settings, fake))
    actions = await aiohttp_client(
        create_app(settings, store, billing=service),
        headers={"Authorization": f"Bearer {settings.api_token_values()[0]}"},
    )
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    await stack.start()
    try:
        created = START + 1
        await post_webhook(
            stack,
            f.event("customer.subscription.created", copy.deepcopy(subscription), created=created),
        )
        await until_served(
            stack,
            customer,
            {
                "plan": "PRO",
                "interval": "month",
                "pending_plan": None,
                "cancel_at_period_end": False,
            },
        )

        async def catalog_loaded() -> bool:
            return service.catalog.current is not None

        await eventually(catalog_loaded, "the actions' catalog loaded", timeout=10)

        for plan in ("BUSINESS", "PRO"):  # an upgrade now, then a downgrade at period end
            path = f"/billing/subscriptions/{sub_id}"
            preview = await actions.post(f"{path}/preview", json={"plan": plan})
            assert preview.status == 200, await preview.text()
            promised = (await preview.json())["promised"]
            change = await actions.post(f"{path}/change", json={"plan": plan})
            assert change.status == 200, await change.text()
            returned = [
                a for m, p, a in fake.answers if m == "post" and p == f"/v1/subscriptions/{sub_id}"
            ][-1]
            created += 10
            event = f.event(
                "customer.subscription.updated", copy.deepcopy(returned), created=created
            )
            await post_webhook(stack, event)
            await until_served(stack, customer, promised)

        (upgrade, downgrade) = fake.posts(f"/v1/subscriptions/{sub_id}")
        assert upgrade.form["proration_behavior"] == ["always_invoice"]
        assert downgrade.form["metadata[pending_plan]"] == ["PRO"]
        final = await served(stack, customer)
        assert final is not None
        assert (final["plan"], final["pending_plan"]) == ("BUSINESS", "PRO")

        api_log = tmp_path / "api.log"

        def logged(text: str) -> bool:
            return text in api_log.read_text(errors="replace")

        async def watching() -> bool:
            return logged("billing catalog: watching")

        await eventually(watching, "the live api watching stripe.events", timeout=30)
        price_event = f.event("price.updated", {**business, "active": False}, created=created + 1)
        await post_webhook(stack, price_event)

        async def refreshed() -> bool:
            return logged("price/product event seen")

        await eventually(refreshed, "the live api refreshed its catalog", timeout=20)
    finally:
        stack.stop()
        store.close()
