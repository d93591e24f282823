"""A stripe-python transport that records every request it sends to stripe-mock.

stripe-mock validates each request against Stripe's OpenAPI spec but always answers a list
with one fixture item and `has_more: false`. `PagedEvents` keeps stripe-mock's validation (a
rejected request still fails) and replaces the body of accepted `GET /v1/events` answers with
pages of a synthetic event history, so multi-page walks can be tested too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import stripe

from billstream.settings import Settings
from billstream.stripe_client import make_stripe_client

Rewrite = Callable[[str, str, bytes, int], tuple[bytes, int]]


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body or "", keep_blank_values=True)


class RecordingClient(stripe.RequestsClient):
    """Sends for real (to stripe-mock) and keeps what was sent; `rewrite` may edit answers."""

    def __init__(self, rewrite: Rewrite | None = None) -> None:
        super().__init__(timeout=10)
        self.sent: list[Sent] = []
        self.rewrite = rewrite

    # RequestsClient.request narrows HTTPClient.request the same way (bytes, no `_usage`).
    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        self.sent.append(Sent(method, url, dict(headers or {}), post_data))
        body, status, response_headers = super().request(method, url, headers, post_data)
        if self.rewrite is not None:
            body, status = self.rewrite(method, url, body, status)
        return body, status, response_headers


def client_for(settings: Settings, transport: RecordingClient) -> stripe.StripeClient:
    """The tools' client, with retries off so each test sees every answer."""
    return make_stripe_client(settings, http_client=transport, max_network_retries=0)


def stripe_event(index: int, created: int, event_type: str, customer: str) -> dict[str, Any]:
    """A small but well-formed Stripe event envelope."""
    return {
        "id": f"evt_{index:06d}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": {"id": f"in_{index:06d}", "object": "invoice", "customer": customer}},
    }


RATE_LIMITED = orjson.dumps(
    {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many"}}
)


class PagedEvents:
    """A synthetic history served newest first, paged by `limit` and `starting_after`."""

    def __init__(self, events: list[dict[str, Any]], rate_limited: int = 0) -> None:
        self.newest_first = sorted(events, key=lambda e: (e["created"], e["id"]), reverse=True)
        self.rate_limited = rate_limited  # answer this many list calls with 429 first

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        if method != "get" or urlsplit(url).path != "/v1/events" or status != 200:
            return body, status
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return RATE_LIMITED, 429
        query = parse_qs(urlsplit(url).query)
        since = int(query["created[gte]"][0])
        limit = int(query["limit"][0])
        rows = [e for e in self.newest_first if e["created"] >= since]
        if "starting_after" in query:
            ids = [e["id"] for e in rows]
            rows = rows[ids.index(query["starting_after"][0]) + 1 :]
        page: dict[str, Any] = {"object": "list", "url": "/v1/events", "data": rows[:limit]}
        page["has_more"] = len(rows) > limit
        return orjson.dumps(page), 200


class PagedSubscriptions:
    """`GET /v1/subscriptions?status=all` answered with these objects, paged by `limit` and
    `starting_after`; `rate_limited_at` answers that page (0-based, once) with a 429."""

    def __init__(self, objects: list[dict[str, Any]], rate_limited_at: int | None = None) -> None:
        self.objects = objects
        self.rate_limited_at = rate_limited_at
        self.pages = 0  # pages answered with subscriptions

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        if method != "get" or urlsplit(url).path != "/v1/subscriptions" or status != 200:
            return body, status
        if self.rate_limited_at == self.pages:
            self.rate_limited_at = None
            return RATE_LIMITED, 429
        query = parse_qs(urlsplit(url).query)
        assert query["status"] == ["all"]
        rows = self.objects
        if "starting_after" in query:
            ids = [o["id"] for o in rows]
            rows = rows[ids.index(query["starting_after"][0]) + 1 :]
        limit = int(query["limit"][0])
        page: dict[str, Any] = {"object": "list", "url": "/v1/subscriptions", "data": rows[:limit]}
        page["has_more"] = len(rows) > limit
        self.pages += 1
        return orjson.dumps(page), 200


class Rewrites:
    """Several rewrites in turn (each leaves the answers it does not handle unchanged)."""

    def __init__(self, *rewrites: Rewrite) -> None:
        self.rewrites = rewrites

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        for rewrite in self.rewrites:
            body, status = rewrite(method, url, body, status)
        return body, status


class PerAccount:
    """Each Stripe account's own answers: the rewrite of the account the request named in
    `Stripe-Account` (None: the platform); answers of other accounts stay stripe-mock's."""

    def __init__(self, transport: RecordingClient, rewrites: Mapping[str | None, Rewrite]) -> None:
        self.transport = transport
        self.rewrites = rewrites

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        account = self.transport.sent[-1].headers.get("Stripe-Account")
        rewrite = self.rewrites.get(account)
        return (body, status) if rewrite is None else rewrite(method, url, body, status)


class PagedEntitlements:
    """A customer's active entitlements behind `GET /v1/entitlements/active_entitlements`, in
    pages of `limit` (at most `page_cap`) after `starting_after`; other requests pass through."""

    def __init__(self, customer: str, lookup_keys: list[str], page_cap: int = 100) -> None:
        self.customer = customer
        self.items = [
            {
                "id": f"ent_test_{key}",
                "object": "entitlements.active_entitlement",
                "feature": f"feat_test_{key}",
                "livemode": False,
                "lookup_key": key,
            }
            for key in lookup_keys
        ]
        self.page_cap = page_cap

    def __call__(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        path = urlsplit(url).path
        if method != "get" or path != "/v1/entitlements/active_entitlements" or status != 200:
            return body, status
        query = parse_qs(urlsplit(url).query)
        rows = self.items if query["customer"] == [self.customer] else []
        if "starting_after" in query:
            ids = [item["id"] for item in rows]
            rows = rows[ids.index(query["starting_after"][0]) + 1 :]
        limit = min(int(query.get("limit", ["10"])[0]), self.page_cap)
        page = {"object": "list", "url": path, "data": rows[:limit], "has_more": len(rows) > limit}
        return orjson.dumps(page), 200
