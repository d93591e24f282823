"""Thin event destinations through the real pipeline: ingest → stripe.thin-events → resolver →
stripe.events → worker → api, with the resolver's Stripe calls answered by stripe-mock.

The first test runs `billstream resolve` as its own process, beside ingest, worker and api: a
thin notification without a snapshot event is resolved from the related object; one naming an
object Stripe does not have is dead-lettered (`resolve_not_found`, `replay-to`) while the next is
resolved; a health notification is counted; an entitlements summary with more pages is
completed by the resolver. The second runs the resolver loop in-process so that stripe-mock's
`GET /v1/events/{id}` can answer with the very event the snapshot endpoint received (stripe-mock
validates the request; its fixture event would be another event): delivered by both
destinations, the event is applied once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import stripe

from billstream.resolver.metrics import ResolverMetrics
from billstream.resolver.resolve import Resolver
from billstream.resolver.service import ResolverLoop
from billstream.settings import Settings
from billstream.simulate.thin import health_notification, notification
from billstream.stripe_calls import RateLimiter, RetryPolicy, StripeCalls
from billstream.stripe_client import make_stripe_client
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS_DLQ, STRIPE_THIN_EVENTS
from tests.integration.live_stack import LiveStack, eventually, get_json
from tests.support import factories as f
from tests.support.children import free_port, settings_env
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import RecordingClient, client_for
from tests.support.worker_process import metric_value, read_all

TIMEOUT = 90.0
SECRET = "whsec_test_secret"
CREATED = 1_767_225_600


async def post(settings: Settings, body: dict[str, Any], path: str) -> int:
    raw = json.dumps(body).encode()
    headers = {"Stripe-Signature": sign_payload(raw, SECRET)}
    url = f"http://127.0.0.1:{settings.ingest_port}{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw, headers=headers) as r,
    ):
        return r.status


async def metrics_text(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as r,
    ):
        return await r.text()


def stack_settings(
    make_settings: SettingsFactory, kafka_bootstrap: str, stripe_mock: str, tmp_path: Path
) -> Settings:
    return make_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        stripe_api_key="sk_test_thin",
        stripe_api_base=stripe_mock,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        resolver_port=free_port(),
        database_url=f"sqlite:///{tmp_path}/read-model.db",
        worker_data_dir=str(tmp_path / "worker"),
    )


def thin_about(sub_id: str, url: str | None = None, note_id: str | None = None) -> dict[str, Any]:
    event = f.subscription_event(created=CREATED, sub_id=sub_id, event_id=note_id)
    note = notification(event, snapshot=False)
    if url is not None:
        note["related_object"] = {"id": sub_id, "type": "subscription", "url": url}
    return note


async def test_thin_notifications_resolved_by_the_resolver_process(
    make_settings: SettingsFactory, kafka_bootstrap: str, stripe_mock: str, tmp_path: Path
) -> None:
    settings = stack_settings(make_settings, kafka_bootstrap, stripe_mock, tmp_path)
    # What Stripe (stripe-mock) holds for the subscription: the customer the api must serve.
    held = make_stripe_client(settings, max_network_retries=0).v1.subscriptions.retrieve("sub_thin")
    customer = str(held.customer)
    stack = LiveStack(
        settings, tmp_path, with_prometheus=False, services=("ingest", "worker", "api", "resolve")
    )
    api = f"http://127.0.0.1:{settings.api_port}"
    await stack.start()
    try:
        lost = thin_about("sub_gone", url="/v1/no_such_things/sub_gone")
        assert await post(settings, lost, "/webhooks/stripe/thin") == 200
        assert await post(settings, thin_about("sub_thin"), "/webhooks/stripe/thin") == 200
        health = health_notification("evt_health_thin", CREATED)
        assert await post(settings, health, "/webhooks/stripe/thin") == 200

        async def served() -> bool:
            body = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
            return bool(body.get("subscription_id") == "sub_thin")

        await eventually(served, "the resolved subscription served by the api", TIMEOUT)
        account = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
        assert account["subscription_status"] == held.status
        assert account["updated_by_event_type"] == "customer.subscription.updated"

        [letter] = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS_DLQ))
        headers = dict(letter.headers)
        assert headers["error"] == b"resolve_not_found"
        assert headers["replay-to"] == b"stripe.thin-events"
        assert orjson.loads(letter.value)["id"] == lost["id"]  # the notification, unchanged

        # Re-driven, it goes back to the resolver's topic (replay-to), not to the worker's; still
        # unknown to Stripe, it is dead-lettered again with its reason.
        replay = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "billstream.cli", "dlq", "replay", "--no-progress",
             "--checkpoint", str(tmp_path / "replay.json"), "--reason", "resolve_not_found"],
            env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr
        thin = await read_all(kafka_bootstrap, settings.topic(STRIPE_THIN_EVENTS))
        again = [r for r in thin if orjson.loads(r.value)["id"] == lost["id"]]
        assert len(again) == 2
        assert dict(again[1].headers)["source"] == b"replayed-from-dlq"
        assert "replay-to" not in dict(again[1].headers)

        async def dead_twice() -> bool:
            letters = await read_all(kafka_bootstrap, settings.topic(STRIPE_EVENTS_DLQ))
            return len(letters) == 2

        await eventually(dead_twice, "the replayed notification dead-lettered again", TIMEOUT)

        text = await metrics_text(settings.resolver_port)
        generation = 'type="v2.core.health.event_generation_failure.resolved"'
        assert f"billstream_stripe_health_events_total{{{generation}}} 1.0" in text
        assert 'billstream_resolver_requests_total{result="synthetic"} 1.0' in text
        assert 'billstream_resolver_requests_total{result="dead_lettered"} 2.0' in text
        assert metric_value(text, "billstream_dlq_total") == 2

        # More entitlements than the summary lists: the worker asks, the resolver completes it.
        features = [f"feature_{n:02d}" for n in range(11)]
        summary = f.entitlements_event(features, created=CREATED, customer="cus_ent_thin")
        assert await post(settings, summary, "/webhooks/stripe") == 200
        fixture = make_stripe_client(settings).v1.entitlements.active_entitlements.list(
            {"customer": "cus_ent_thin"}
        )
        expected = sorted(item.lookup_key for item in fixture.data)

        async def completed() -> bool:
            body = await get_json(f"{api}/accounts/cus_ent_thin", stack.api_headers)
            return bool(body.get("features") == expected)

        await eventually(completed, "the refetched summary (stripe-mock's list) served", TIMEOUT)
        text = await metrics_text(settings.resolver_port)
        assert 'billstream_resolver_requests_total{result="refetch"} 1.0' in text
    finally:
        stack.stop()


class SameEvent:
    """stripe-mock validates `GET /v1/events/{id}`; the answer is the event Stripe would return."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        if method == "get" and urlsplit(url).path == f"/v1/events/{self.event['id']}":
            return orjson.dumps(self.event), status
        return body, status


async def test_an_event_delivered_by_both_destinations_is_applied_once(
    make_settings: SettingsFactory, kafka_bootstrap: str, stripe_mock: str, tmp_path: Path
) -> None:
    settings = stack_settings(make_settings, kafka_bootstrap, stripe_mock, tmp_path)
    customer = "cus_both_destinations"
    event = f.subscription_event(created=CREATED, customer=customer, sub_id="sub_both")
    transport = RecordingClient(rewrite=SameEvent(event))
    calls = StripeCalls(RateLimiter(100), RetryPolicy(attempts=3, base=0.01, cap=0.1))
    loop = ResolverLoop(
        settings, Resolver(client_for(settings, transport), calls), ResolverMetrics.create()
    )
    stack = LiveStack(settings, tmp_path, with_prometheus=False)
    api = f"http://127.0.0.1:{settings.api_port}"
    await stack.start()
    task = asyncio.create_task(loop.run())
    try:
        assert await post(settings, event, "/webhooks/stripe") == 200
        assert await post(settings, notification(event), "/webhooks/stripe/thin") == 200

        async def resolved() -> bool:
            value = loop.metrics.registry.get_sample_value(
                "billstream_resolver_requests_total", {"result": "snapshot"}
            )
            return value == 1

        await eventually(resolved, "the thin copy resolved from its snapshot event", TIMEOUT)
        assert [s.path for s in transport.sent] == [f"/v1/events/{event['id']}"]

        async def duplicate_seen() -> bool:
            text = await metrics_text(settings.worker_web_port)
            return metric_value(text, "stripe_webhook_duplicate_total") >= 1

        await eventually(duplicate_seen, "the worker dropping the second copy", TIMEOUT)
        account = await get_json(f"{api}/accounts/{customer}", stack.api_headers)
        assert account["version"] == 1  # one application, not two
        transitions = await get_json(f"{api}/accounts/{customer}/transitions", stack.api_headers)
        assert len(transitions["items"]) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, stripe.StripeError):
            await task
        stack.stop()
