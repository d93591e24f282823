"""A same-second tie through the real pipeline: ingest → worker → api, answered by a refetch.

Two updates of one subscription in one second that no rule orders (past_due, then active,
without previous_attributes): the worker serves the later delivery and, with STRIPE_API_KEY
set, asks for the subscription on stripe.thin-events. The test plays the resolver's answer in
the format it publishes (a synthetic `customer.subscription.updated` with `billstream_source:
refetch`, showing the subscription as Stripe has it: past_due), and the api serves it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from billstream.routing import record_headers
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS, STRIPE_THIN_EVENTS
from tests.integration.kafka import produce
from tests.integration.live_stack import LiveStack, eventually, get_json
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.settings import SettingsFactory
from tests.support.worker_process import read_all

TIMEOUT = 60.0
CREATED = 1_767_225_600


async def post(stack: LiveStack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_test_secret")}
    url = f"http://127.0.0.1:{stack.settings.ingest_port}/webhooks/stripe"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_an_undecided_tie_is_refetched_and_the_answer_wins(
    make_settings: SettingsFactory, kafka_bootstrap: str, unique_id: str, tmp_path: Path
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_ties",
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
    )
    customer, sub = f"cus_tie_{unique_id}", f"sub_tie_{unique_id}"
    common: dict[str, Any] = {"customer": customer, "sub_id": sub, "created": CREATED}
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    api = f"http://127.0.0.1:{settings.api_port}"
    await stack.start()
    try:
        assert await post(stack, f.subscription_event(status="past_due", **common)) == 200
        assert await post(stack, f.subscription_event(status="active", **common)) == 200

        async def status() -> str | None:
            body = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
            return body.get("subscription_status") if body.get("customer_id") == customer else None

        async def later_delivery() -> bool:
            return await status() == "active"

        await eventually(later_delivery, "the later delivery served", TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while not (requests := await read_all(kafka_bootstrap, settings.topic(STRIPE_THIN_EVENTS))):
            assert time.monotonic() < deadline, "no refetch request on stripe.thin-events"
            await asyncio.sleep(0.5)
        [request_record] = requests
        assert request_record.key == customer.encode()
        assert dict(request_record.headers)["source"] == b"refetch"
        request = orjson.loads(request_record.value)
        assert request["reason"] == "same_second_tie"
        assert request["related_object"]["url"] == f"/v1/subscriptions/{sub}"

        # The resolver's answer, in the format it publishes (branch `thin`).
        answer = f.subscription_event(
            status="past_due", event_id="evt_" + request["id"].removeprefix("rfq_"), **common
        )
        answer["billstream_source"] = "refetch"
        headers = record_headers(answer, int(time.time() * 1000), "refetch")
        await produce(
            kafka_bootstrap,
            settings.topic(STRIPE_EVENTS),
            [(customer.encode(), orjson.dumps(answer), headers)],
        )

        async def refetched() -> bool:
            return await status() == "past_due"

        await eventually(refetched, "the refetched subscription served", TIMEOUT)
    finally:
        stack.stop()
