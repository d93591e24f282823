"""Drift audit and heal on the real pipeline, with Stripe's API answered through stripe-mock.

Stripe (stripe-mock validates every request; the listed subscriptions are this test's) says
cus_a has an active PRO subscription billstream never heard of, cus_b's subscription was
canceled though billstream serves it active, and cus_c agrees. The audit finds exactly the
first two, by field (the subscription schedules of those customers are listed and folded too);
the heal publishes their objects to stripe.events (source: drift), the
worker folds them, and the audit finds nothing; a second heal is a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

from billstream.drift.cli import Audit, audit
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS
from tests.integration.live_stack import LiveStack
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import RecordingClient, client_for
from tests.support.worker_process import read_all


class Subscriptions:
    """Answers GET /v1/subscriptions with these objects, paged by `limit`/`starting_after`."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        if method != "get" or urlsplit(url).path != "/v1/subscriptions" or status != 200:
            return body, status
        query = parse_qs(urlsplit(url).query)
        assert query["status"] == ["all"]
        rows = self.objects
        if "starting_after" in query:
            ids = [o["id"] for o in rows]
            rows = rows[ids.index(query["starting_after"][0]) + 1 :]
        limit = int(query["limit"][0])
        page: dict[str, Any] = {"object": "list", "url": "/v1/subscriptions", "data": rows[:limit]}
        page["has_more"] = len(rows) > limit
        return orjson.dumps(page), 200


async def post(stack: LiveStack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_test_secret")}
    url = f"http://127.0.0.1:{stack.settings.ingest_port}/webhooks/stripe"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status


async def test_detect_heal_clean(
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    stripe_mock: str,
    unique_id: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_drift",
        stripe_api_base=stripe_mock,
        billing_plan_map=f.PLAN_MAP,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
    )
    a, b, c = (f"cus_{name}_{unique_id}" for name in "abc")

    def sub(customer: str, status: str, price: dict[str, Any]) -> dict[str, Any]:
        return f.subscription(
            sub_id=f"sub_{customer}", customer=customer, status=status, prices=[price],
            created=1_767_225_600,
        )  # fmt: skip

    stripe_says = [
        sub(a, "active", f.pro_monthly()),
        sub(b, "canceled", f.pro_monthly()),
        sub(c, "active", f.business_monthly()),
    ]
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    await stack.start()
    try:
        for customer, price in ((b, f.pro_monthly()), (c, f.business_monthly())):
            event = f.event(
                "customer.subscription.created",
                sub(customer, "active", price),
                created=1_767_225_601,
            )
            assert await post(stack, event) == 200
        transport = RecordingClient(rewrite=Subscriptions(stripe_says))
        client = client_for(settings, transport)
        api = f"http://127.0.0.1:{settings.api_port}"

        async def audited(heal: bool = False) -> Audit:
            return await asyncio.to_thread(audit, settings, client, api, heal)

        deadline = time.monotonic() + 60
        while len((found := await audited()).drifting) != 2:  # until b and c are served
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.5)
        assert found.drifting == sorted([a, b])
        fields = {(d.customer_id, d.field): (d.stripe, d.served) for d in found.found}
        assert fields[(b, "subscription_status")] == ("canceled", "active")
        assert fields[(b, "plan")] == ("FREE", "PRO")
        assert fields[(a, "plan")] == ("PRO", None)  # not served at all
        # Schedules are listed too (stripe-mock's one is of another customer: not folded).
        assert any(sent.path == "/v1/subscription_schedules" for sent in transport.sent)

        healed = await audited(heal=True)
        assert healed.healed_events == 2
        while (again := await audited()).found:
            assert time.monotonic() < deadline + 60, again.found
            await asyncio.sleep(0.5)
        repeat = await audited(heal=True)  # nothing drifts: nothing published
        assert repeat.healed_events == 0

        records = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS))
        drift = [r for r in records if dict(r.headers).get("source") == b"drift"]
        assert len(drift) == 2
        assert all(orjson.loads(r.value)["id"].startswith("evt_drift_") for r in drift)
    finally:
        stack.stop()
