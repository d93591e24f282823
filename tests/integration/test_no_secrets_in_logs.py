"""No secret and no payload in any log line of a whole pipeline at DEBUG level.

Ingest, worker and api run as child processes (JSON logs, LOG_LEVEL=DEBUG) with a webhook
secret, a Stripe API key, a reconcile timer and billing actions that really call Stripe (at a
closed port, so every call fails and is logged). The traffic covers each logging path:
accepted events, events the worker dead-letters, forged and replayed signatures, bodies over
the limit, an ignored type, broken HTTP, billing actions. A canary string sits in every body's
payload fields; afterwards no output line may carry it, the secrets, or anything shaped like
Stripe key material.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from billstream.ingest.app import WEBHOOK_PATH
from billstream.stripe_signing import sign_payload
from billstream.topics import ensure_topics
from tests.integration.live_stack import (
    SERVICES,
    Child,
    LiveStack,
    eventually,
    get_json,
    service_env,
)
from tests.integration.raw_http import exchange, request_head
from tests.support import factories as f
from tests.support.children import TEST_API_TOKEN, free_port
from tests.support.settings import SettingsFactory

WEBHOOK_SECRET = f"whsec_{uuid4().hex}"
API_KEY = f"sk_test_{uuid4().hex}"
KEY_MATERIAL = re.compile(r"(whsec|[sr]k_live|[sr]k_test)_[A-Za-z0-9]{4,}")
MAX_BODY = 16_384
HUGE = "__a number beyond any double__"


@pytest.fixture
async def stack(
    kafka_bootstrap: str, make_settings: SettingsFactory, tmp_path: Path, closed_port_url: str
) -> AsyncIterator[LiveStack]:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_webhook_secrets=WEBHOOK_SECRET,
        billing_plan_map=f.PLAN_MAP,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        worker_data_dir=str(tmp_path / "worker"),
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
    )
    await ensure_topics(settings)
    env = service_env(settings) | {
        "LOG_LEVEL": "DEBUG",
        "STRIPE_WEBHOOK_MAX_BODY": str(MAX_BODY),
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": closed_port_url,
        "RECONCILE_CRON_ENABLED": "true",
        "RECONCILE_CRON_INTERVAL_SECONDS": "1",
        "RECONCILE_CRON_LOOKAHEAD_SECONDS": "86400",
    }
    live = LiveStack(settings, tmp_path)  # its helpers; no Prometheus here
    for name in SERVICES:
        argv = [sys.executable, "-m", "billstream.cli", name]
        live.children[name] = Child(name, argv, tmp_path / f"{name}.log", env)
        live.children[name].start()
    try:
        for name in SERVICES:
            await live.wait_ready(name)
        yield live
    finally:
        live.stop()


def with_canary(event: dict[str, Any], canary: str) -> bytes:
    """`event` with the canary in payload fields (e-mail, name, metadata), never in ids."""
    obj = event["data"]["object"]
    obj["email"] = obj["customer_email"] = f"{canary}@example.invalid"
    obj["name"] = canary
    obj.setdefault("metadata", {})["note"] = canary
    return json.dumps(event).encode()


def traffic(customer: str, canary: str) -> dict[str, list[bytes]]:
    """Bodies by what should become of them."""
    now = int(time.time())
    downgrade = f.subscription_event(
        "customer.subscription.created",
        created=now,
        customer=customer,
        sub_id=f"sub_{customer}",
        prices=[f.business_monthly()],
        current_period_end=now + 120,  # due: the reconcile timer asks Stripe for PRO's price
        pending_plan="PRO",
    )
    failed = f.invoice_event("invoice.payment_failed", created=now + 1, customer=customer)
    updated = f.customer_event("customer.updated", created=now + 2, customer=customer)
    bad_created = f.customer_event("customer.updated", created=now, customer=customer)
    bad_created["created"] = "yesterday"
    bad_items = f.subscription_event(
        "customer.subscription.updated", created=now, customer=customer
    )
    bad_items["data"]["object"]["items"] = canary
    huge_number = f.customer_event("customer.updated", created=now, customer=customer)
    huge_number["data"]["object"]["balance"] = HUGE  # ingest routes it, orjson refuses it
    ignored = f.event("charge.succeeded", {"id": "ch_1", "customer": customer}, created=now)
    return {
        "queued": [with_canary(e, canary) for e in (downgrade, failed, updated)],
        "dead-lettered": [
            with_canary(e, canary).replace(f'"{HUGE}"'.encode(), b"1e999")
            for e in (bad_created, bad_items, huge_number)
        ],
        "ignored": [with_canary(ignored, canary)],
    }


async def post(session: aiohttp.ClientSession, url: str, body: bytes, signature: str | None) -> str:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    async with session.post(url, data=body, headers=headers) as response:
        answer: dict[str, str] = await response.json()
        return answer["status"]


async def test_no_secret_or_payload_reaches_any_log(stack: LiveStack, unique_id: str) -> None:
    canary = f"CANARY{unique_id}"
    customer = f"cus_{unique_id}"
    url = f"http://127.0.0.1:{stack.settings.ingest_port}{WEBHOOK_PATH}"
    bodies = traffic(customer, canary)
    forged = bodies["queued"][0]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for expected, group in bodies.items():
            for body in group:
                assert await post(session, url, body, sign_payload(body, WEBHOOK_SECRET)) == (
                    "queued" if expected == "dead-lettered" else expected
                )
        for signature in (
            sign_payload(forged, "whsec_someone_elses_secret"),
            sign_payload(forged, WEBHOOK_SECRET, int(time.time()) - 3600),
            f"t={int(time.time())},v1={canary}",
            None,
        ):
            assert await post(session, url, forged, signature) == "invalid_signature"
        oversize = forged + b" " * MAX_BODY
        assert await post(session, url, oversize, sign_payload(oversize, WEBHOOK_SECRET)) == (
            "too_large"
        )
    head = request_head([("Content-Length", "2")])
    broken = await exchange(stack.settings.ingest_port, [head + f"{{}}{canary} x\r\n\r\n".encode()])
    assert broken.status == 400

    api = f"http://127.0.0.1:{stack.settings.api_port}"
    # The billing actions call Stripe with the key (at the closed port: 503, logged).
    async with aiohttp.ClientSession(timeout=timeout, headers=stack.api_headers) as session:
        actions = [
            ("/billing/customers", {"user_id": "u1", "email": f"{canary}@example.invalid"}),
            (
                "/billing/portal-sessions",
                {"customer_id": customer, "return_url": f"https://example.com/{canary}"},
            ),
        ]
        for path, action in actions:
            async with session.post(api + path, json=action) as response:
                assert response.status == 503, await response.text()

    async def pipeline_done() -> bool:
        account = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
        worker = "\n".join(stack.log_lines("worker"))
        return (
            account.get("customer_id") == customer
            and worker.count("dead-lettered") >= len(bodies["dead-lettered"])
            and "cannot reach Stripe" in worker  # the reconcile timer called Stripe with the key
            and "stripe call failed" in "\n".join(stack.log_lines("api"))
        )

    await eventually(pipeline_done, "events applied, dead-lettered and reconciled", 45)
    stack.stop()  # shutdown logs count too

    for name in SERVICES:
        lines = stack.log_lines(name)
        assert lines, name
        for line in lines:
            assert canary not in line, (name, line)
            assert WEBHOOK_SECRET not in line, name
            assert API_KEY not in line, name
            assert TEST_API_TOKEN not in line, name
            assert not KEY_MATERIAL.search(line), (name, line)
