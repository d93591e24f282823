"""A stand-in for ingest's contract (DESIGN.md "Ingest"), recording what it queued, in order."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

import orjson
import stripe
from aiohttp import web

SECRET = "whsec_simulate_test"
CONNECT_SECRET = "whsec_simulate_connect_test"
# The default allowlist (settings.DEFAULT_ALLOWED_EVENTS): `invoice_payment.*` is not in it.
ALLOWED_PREFIXES = (
    "checkout.session.",
    "customer.",
    "invoice.",
    "subscription_schedule.",
    "entitlements.",
    "payment_intent.payment_failed",
    "charge.failed",
    "price.",
    "product.",
)


class FakeIngest:
    def __init__(self, fail_first: Callable[[str], bool] = lambda _: False) -> None:
        self.queued: list[dict[str, object]] = []
        self.fail_first = fail_first
        self.failed: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        connect = request.path.endswith("/connect")
        body = await request.read()
        try:
            stripe.WebhookSignature.verify_header(
                body.decode(),
                request.headers.get("Stripe-Signature"),
                CONNECT_SECRET if connect else SECRET,
                tolerance=300,
            )
        except stripe.SignatureVerificationError:
            return web.json_response({"status": "invalid_signature"}, status=400)
        event = orjson.loads(body)
        if isinstance(event, dict) and connect != bool(event.get("account")):
            return web.json_response({"status": "wrong_endpoint"}, status=400)
        if not isinstance(event.get("data"), dict) or "object" not in event["data"]:
            return web.json_response({"status": "invalid_payload"}, status=400)
        # Uneven handling times, so any ordering the sender does not enforce would show.
        await asyncio.sleep((zlib.crc32(event["id"].encode()) % 5) / 1000)
        if not str(event["type"]).startswith(ALLOWED_PREFIXES):
            return web.json_response({"status": "ignored"})
        if self.fail_first(event["id"]) and event["id"] not in self.failed:
            self.failed.add(event["id"])
            return web.json_response({"status": "unavailable"}, status=503)
        self.queued.append(event)
        return web.json_response({"status": "queued"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/stripe", self.handle)
        app.router.add_post("/webhooks/stripe/connect", self.handle)
        return app
