"""A stripe-mock transport that answers like Stripe for the billing actions' objects.

stripe-mock validates every request against Stripe's OpenAPI spec and answers with fixtures;
`FakeStripe` keeps that validation (a request stripe-mock rejects still fails) and replaces the
bodies of accepted answers with this test's objects: prices found by `lookup_keys`, the
subscription being changed (and updated by the parameters sent, as Stripe would), customers
found by Search. `fail_next` answers the next matching request with a Stripe error instead.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import orjson

from tests.support.stripe_api import RecordingClient

Json = dict[str, Any]
SUBSCRIPTION_PATH = re.compile(r"^/v1/subscriptions/([^/]+)$")
PRICE_PATH = re.compile(r"^/v1/prices/([^/]+)$")


def catalog_price(
    price_id: str,
    lookup_key: str | None,
    interval: str = "month",
    unit_amount: int = 2900,
    *,
    active: bool = True,
    product_active: bool = True,
) -> Json:
    """A price as the Prices API returns it with `expand[]=data.product`."""
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "currency": "usd",
        "lookup_key": lookup_key,
        "product": {
            "id": f"prod_{price_id}",
            "object": "product",
            "active": product_active,
            "name": f"Product {price_id}",
        },
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
        "type": "recurring",
        "unit_amount": unit_amount,
    }


def error_body(kind: str, message: str, **fields: str) -> Json:
    return {"error": {"type": kind, "message": message, **fields}}


def _form_items(form: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in form.items()}


class FakeStripe(RecordingClient):
    def __init__(
        self,
        prices: list[Json] | None = None,
        subscriptions: list[Json] | None = None,
        customers: list[Json] | None = None,
    ) -> None:
        super().__init__(rewrite=self._answer)
        self.prices = {p["id"]: p for p in prices or []}
        self.subscriptions = {s["id"]: s for s in subscriptions or []}
        self.customers = list(customers or [])
        self.failures: deque[tuple[str, str, int, Json]] = deque()
        self.answers: list[tuple[str, str, Json]] = []  # (method, path, body) answered

    def fail_next(self, method: str, path_prefix: str, status: int, body: Json) -> None:
        self.failures.append((method, path_prefix, status, body))

    def posts(self, path: str | None = None) -> list[Any]:
        return [s for s in self.sent if s.method == "post" and (path is None or s.path == path)]

    def _answer(self, method: str, url: str, body: bytes, status: int) -> tuple[bytes, int]:
        path = urlsplit(url).path
        for failure in list(self.failures):
            if failure[0] == method and path.startswith(failure[1]):
                self.failures.remove(failure)
                return orjson.dumps(failure[3]), failure[2]
        if status != 200:
            return body, status
        answer = self._object(method, path, orjson.loads(body))
        self.answers.append((method, path, answer))
        return orjson.dumps(answer), status

    def _object(self, method: str, path: str, mock: Json) -> Json:
        if method == "get" and path == "/v1/prices":
            keys = [v[0] for k, v in self.sent[-1].query.items() if k.startswith("lookup_keys")]
            data = [p for p in self.prices.values() if p["lookup_key"] in keys and p["active"]]
            return {"object": "list", "url": path, "has_more": False, "data": data}
        if method == "get" and (match := PRICE_PATH.match(path)) and match[1] in self.prices:
            return self.prices[match[1]]
        if method == "get" and path == "/v1/customers/search":
            return {**mock, "data": self.customers, "has_more": False}
        match = SUBSCRIPTION_PATH.match(path)
        if match and match[1] in self.subscriptions:
            subscription = self.subscriptions[match[1]]
            if method == "post":
                self._update(subscription, _form_items(self.sent[-1].form))
            return subscription
        return mock

    def _update(self, subscription: Json, form: dict[str, str]) -> None:
        """Apply the update as Stripe would (the fields the billing actions send)."""
        if "items[0][price]" in form:
            item = subscription["items"]["data"][0]
            assert form["items[0][id]"] == item["id"]
            price = self.prices.get(form["items[0][price]"])
            item["price"] = {**(price or {"id": form["items[0][price]"]}), "product": "prod_x"}
        if "cancel_at_period_end" in form:
            subscription["cancel_at_period_end"] = form["cancel_at_period_end"] == "true"
        if "metadata[pending_plan]" in form:
            metadata = dict(subscription.get("metadata") or {})
            if form["metadata[pending_plan]"]:
                metadata["pending_plan"] = form["metadata[pending_plan]"]
            else:
                metadata.pop("pending_plan", None)
            subscription["metadata"] = metadata
        if "default_payment_method" in form:
            subscription["default_payment_method"] = form["default_payment_method"]
