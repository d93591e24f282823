"""Stripe Connect end to end on the real broker (issue 20's acceptance): platform events and two
connected accounts' events, the same customer id in two accounts, posted to their endpoints,
fold into three billing accounts; scoped tokens see their accounts and get 404 for others."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from billstream.api.main import build_app
from billstream.api.metrics import ApiMetrics
from billstream.ingest.app import create_app
from billstream.ingest.endpoints import CONNECT_PATH, PLATFORM_PATH
from billstream.stripe_signing import sign_payload
from billstream.topics import ACCOUNT_STATE, ensure_topics
from tests.integration.ingest_support import wait_ready
from tests.support.children import TEST_API_TOKEN, free_port
from tests.support.factories import PLAN_MAP, business_monthly, pro_monthly, subscription_event
from tests.support.settings import SettingsFactory
from tests.support.worker_process import WorkerProcess, read_all

PLATFORM_SECRET = "whsec_test_secret"
CONNECT_SECRET = "whsec_connect_test_secret"
ONE_TOKEN = "tenant-one-token-0123456789"
TWO_TOKEN = "tenant-two-token-0123456789"
PLATFORM_TOKEN = "platform-only-token-0123456789"
SHARED = "cus_shared"  # the same customer id in the platform and in acct_one and acct_two


def connected(event: dict[str, Any], account: str) -> bytes:
    return orjson.dumps({**event, "account": account})


async def test_a_mixed_stream_folds_into_separate_accounts_each_token_seeing_its_own(
    aiohttp_client: AiohttpClient,
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        worker_web_port=free_port(),
        worker_data_dir=str(tmp_path / "worker"),
        billing_plan_map=",".join(f"{k}={v}" for k, v in PLAN_MAP.items()),
        stripe_connect_webhook_secrets=CONNECT_SECRET,
        stripe_account_id="acct_platform",
        api_tokens=",".join(
            [
                TEST_API_TOKEN,  # unscoped: every account
                f"{ONE_TOKEN}@acct_one",
                f"{TWO_TOKEN}@acct_two",
                f"{PLATFORM_TOKEN}@platform",
            ]
        ),
        database_url=f"sqlite:///{tmp_path / 'read.db'}",
    )
    await ensure_topics(settings)
    now = int(time.time())
    deliveries = [
        (PLATFORM_PATH, PLATFORM_SECRET, orjson.dumps(_sub("created", now, pro_monthly()))),
        (
            CONNECT_PATH,
            CONNECT_SECRET,
            connected(_sub("created", now, business_monthly()), "acct_one"),
        ),
        (CONNECT_PATH, CONNECT_SECRET, connected(_sub("created", now, pro_monthly()), "acct_two")),
        (
            CONNECT_PATH,
            CONNECT_SECRET,
            connected(_sub("deleted", now + 5, pro_monthly()), "acct_two"),
        ),
    ]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        ingest = await aiohttp_client(create_app(settings, registry=CollectorRegistry()))
        await wait_ready(ingest)
        await worker.wait_ready()
        for path, secret, body in deliveries:
            headers = {"Stripe-Signature": sign_payload(body, secret)}
            response = await ingest.post(path, data=body, headers=headers)
            assert (response.status, (await response.json())["status"]) == (200, "queued")
        # A connected account's event on the platform endpoint (with its secret) is refused.
        stray = connected(_sub("updated", now + 9, pro_monthly()), "acct_one")
        headers = {"Stripe-Signature": sign_payload(stray, PLATFORM_SECRET)}
        response = await ingest.post(PLATFORM_PATH, data=stray, headers=headers)
        assert response.status == 400

        topic = settings.topic(ACCOUNT_STATE)

        async def three_accounts() -> dict[str, Any]:
            for _ in range(300):
                latest = {
                    r.key.decode(): orjson.loads(r.value)
                    for r in await read_all(kafka_bootstrap, topic)
                }
                if len(latest) == 3 and latest["acct_two/cus_shared"]["plan"] == "FREE":
                    return latest
                await asyncio.sleep(0.2)
            raise AssertionError(f"not three accounts: {worker.log_tail()}")

        states = await three_accounts()
    finally:
        worker.stop()
    assert {key: (s["plan"], s.get("stripe_account")) for key, s in states.items()} == {
        SHARED: ("PRO", None),  # the platform's key: as before Connect
        f"acct_one/{SHARED}": ("BUSINESS", "acct_one"),
        f"acct_two/{SHARED}": ("FREE", "acct_two"),
    }
    assert {s["customer_id"] for s in states.values()} == {SHARED}

    api = await aiohttp_client(build_app(settings, ApiMetrics.create()))

    async def get(path: str, token: str) -> tuple[int, Any]:
        response = await api.get(path, headers={"Authorization": f"Bearer {token}"})
        return response.status, await response.json()

    for _ in range(300):
        status, page = await get("/accounts", TEST_API_TOKEN)
        if status == 200 and len(page["items"]) == 3:
            break
        await asyncio.sleep(0.2)
    served = {(a["stripe_account"], a["customer_id"], a["plan"]) for a in page["items"]}
    assert served == {
        (None, SHARED, "PRO"),
        ("acct_one", SHARED, "BUSINESS"),
        ("acct_two", SHARED, "FREE"),
    }
    one = f"/accounts/{SHARED}?stripe_account=acct_one"
    two = f"/accounts/{SHARED}?stripe_account=acct_two"
    platform = f"/accounts/{SHARED}"
    assert (await get(one, TEST_API_TOKEN))[1]["plan"] == "BUSINESS"
    assert (await get(two, TEST_API_TOKEN))[1]["plan"] == "FREE"
    assert (await get(platform, TEST_API_TOKEN))[1]["plan"] == "PRO"
    assert (await get(f"{platform}?stripe_account=acct_platform", TEST_API_TOKEN))[1][
        "plan"
    ] == "PRO"  # the platform's own id names the platform
    # Each scoped token: its account, and 404 (as for an unknown account) for the others.
    visible = {ONE_TOKEN: one, TWO_TOKEN: two, PLATFORM_TOKEN: platform}
    for token, allowed in visible.items():
        for path in (one, two, platform):
            status, body = await get(path, token)
            assert status == (200 if path == allowed else 404), (token, path, body)
        path, _, query = allowed.partition("?")
        status, body = await get(f"{path}/transitions?{query}", token)
        assert status == 200, (token, allowed)
        assert body["items"], (token, allowed)
        _, page = await get("/accounts", token)
        assert len(page["items"]) == 1
        _, page = await get("/accounts?stripe_account=acct_one", token)
        assert len(page["items"]) == (1 if token == ONE_TOKEN else 0)
    status, body = await get(f"/accounts/{SHARED}/transitions?stripe_account=acct_one", TWO_TOKEN)
    assert status == 404
    status, body = await get("/funnels/dunning", ONE_TOKEN)
    assert (status, body["error"]) == (403, "forbidden")
    assert (await get("/funnels/dunning", TEST_API_TOKEN))[0] == 200


def _sub(kind: str, created: int, price: dict[str, Any]) -> dict[str, Any]:
    return subscription_event(
        f"customer.subscription.{kind}",
        created=created,
        sub_id="sub_shared",
        customer=SHARED,
        prices=[price],
        current_period_end=created + 30 * 86400,
    )
