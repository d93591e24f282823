"""Features through the real pipeline: ingest → worker → api, and the eleventh from Stripe.

A customer with eleven features gets Stripe's summary event (ten listed, `has_more`): the api
serves those ten at once, and the worker asks for the rest on stripe.thin-events. The test
plays the resolver with the function it runs (billstream/entitlements/fetch.py) against
stripe-mock and publishes the synthetic summary to stripe.events (`source: refetch`), as the
resolver does; then the api serves all eleven and `GET /accounts?feature=` finds the customer
by the eleventh.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from billstream.entitlements.fetch import fetch_entitlements_event
from billstream.routing import record_headers
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS, STRIPE_THIN_EVENTS
from tests.integration.kafka import produce
from tests.integration.live_stack import LiveStack, eventually, get_json
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedEntitlements, RecordingClient, client_for
from tests.support.worker_process import read_all

ELEVEN = [f"feature_{n:02d}" for n in range(11)]
TIMEOUT = 60.0


async def post(stack: LiveStack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_payload(body, "whsec_test_secret")}
    url = f"http://127.0.0.1:{stack.settings.ingest_port}/webhooks/stripe"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_eleven_features_are_served_after_the_resolver_fetches_the_rest(
    make_settings: SettingsFactory,
    kafka_bootstrap: str,
    stripe_mock: str,
    unique_id: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_entitlements",
        stripe_api_base=stripe_mock,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
    )
    customer = f"cus_eleven_{unique_id}"
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    api = f"http://127.0.0.1:{settings.api_port}"
    await stack.start()
    try:
        partial = f.entitlements_event(ELEVEN, created=1_767_225_600, customer=customer)
        assert await post(stack, partial) == 200

        async def features() -> list[str] | None:
            body = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
            return body.get("features") if body.get("customer_id") == customer else None

        async def first_ten() -> bool:
            return await features() == ELEVEN[:10]

        await eventually(first_ten, "the ten features of the summary served", TIMEOUT)

        deadline = time.monotonic() + TIMEOUT
        while not (requests := await read_all(kafka_bootstrap, settings.topic(STRIPE_THIN_EVENTS))):
            assert time.monotonic() < deadline, "no refetch request on stripe.thin-events"
            await asyncio.sleep(0.5)
        [request_record] = requests
        assert request_record.key == customer.encode()
        assert dict(request_record.headers)["source"] == b"refetch"
        request = orjson.loads(request_record.value)
        assert request["reason"] == "entitlements_has_more"

        # The resolver's part, with the function it calls, against stripe-mock.
        transport = RecordingClient(rewrite=PagedEntitlements(customer, ELEVEN, page_cap=10))
        synthetic = fetch_entitlements_event(
            client_for(settings, transport),
            request_id=request["id"],
            customer_id=request["related_object"]["id"],
            created=request["created"],
        )
        headers = record_headers(synthetic, int(time.time() * 1000), "refetch")
        topic = settings.topic(STRIPE_EVENTS)
        await produce(
            kafka_bootstrap, topic, [(customer.encode(), orjson.dumps(synthetic), headers)]
        )

        async def all_eleven() -> bool:
            return await features() == ELEVEN

        await eventually(all_eleven, "all eleven features served", TIMEOUT)
        by_feature = await get_json(f"{api}/accounts", stack.api_headers, feature="feature_10")
        assert [item["customer_id"] for item in by_feature["items"]] == [customer]
        transitions = await get_json(f"{api}/accounts/{customer}/transitions", stack.api_headers)
        assert [t["changes"]["features"]["to"] for t in transitions["items"]] == [
            ELEVEN[:10],
            ELEVEN,
        ]
    finally:
        stack.stop()
