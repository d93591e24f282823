"""The `/billing/` handlers: parse and check the body, pick the idempotency key, call Stripe.

Each handler is wrapped by `action`, which turns a `BillingError` into its JSON answer, replays
a client-keyed retry from the `ReplayCache`, and counts plan-change failures by reason.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from billstream.api.billing import bodies, change_calls, changes, checkout, customers, portal
from billstream.api.billing.errors import BillingError
from billstream.api.billing.idempotency import client_key, derived_key, fingerprint, window
from billstream.api.billing.payment_methods import NotTheCustomers, set_default
from billstream.api.billing.service import BillingService
from billstream.api.routes import STORE, Unavailable, read

BILLING = web.AppKey("billing", BillingService)
CHANGE_ROUTES = frozenset({"preview", "change"})
CHANGE_KEY_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Call:
    """One request as the action sees it: the body and how to key its Stripe calls."""

    service: BillingService
    body: dict[str, Any]
    params: Mapping[str, str]
    digest: str
    client_key: str | None
    request: web.Request

    def key(self, action: str, *state: str | None) -> str:
        return self.client_key or derived_key(action, self.digest, *state)


Action = Callable[[Call], Awaitable[dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=dict(headers or {}),
    )


def action(name: str, fields: frozenset[str]) -> Callable[[Action], Handler]:
    def wrap(run: Action) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            service = request.app[BILLING]
            try:
                body = bodies.parse(await request.read(), fields)
                key = client_key(request.headers)
                params = dict(request.match_info)
                digest = fingerprint(name, params, body)
                if key is not None:
                    replay = service.replays.get(key, digest)
                    if replay is not None:
                        return web.Response(
                            body=replay.body,
                            status=replay.status,
                            content_type="application/json",
                            headers={"Idempotent-Replayed": "true"},
                        )
                answer = await run(Call(service, body, params, digest, key, request))
            except BillingError as error:
                if name in CHANGE_ROUTES:
                    service.metrics.change_errors.labels(error.reason).inc()
                return _json(error.body(), error.status, error.response_headers())
            encoded = orjson.dumps(answer)
            if key is not None:
                service.replays.put(key, digest, 200, encoded)
            return web.Response(body=encoded, content_type="application/json")

        return handler

    return wrap


async def get_catalog(request: web.Request) -> web.Response:
    service = request.app[BILLING]
    try:
        catalog = service.current_catalog()
    except BillingError as error:
        return _json(error.body(), error.status, error.response_headers())
    return _json(catalog.to_json(service.book))


@action("customers", frozenset({"user_id", "email"}))
async def create_customer(call: Call) -> dict[str, Any]:
    user_id = bodies.user_id(call.body)
    email = bodies.email(call.body)
    found, created = await call.service.stripe().run(
        customers.find_or_create, user_id, email, call.key("customer")
    )
    return customers.customer_json(found, user_id, created)


def _price(call: Call, plan: str, interval: str) -> str:
    price = call.service.current_catalog().price(plan, interval)
    if price is None:
        field = "interval" if call.service.current_catalog().has_plan(plan) else "plan"
        raise BillingError(422, "unprocessable", f"{plan} has no {interval} price", field=field)
    return price.price_id


@action(
    "checkout-sessions",
    frozenset({"customer_id", "plan", "interval", "success_url", "cancel_url", "trial_days"}),
)
async def create_checkout_session(call: Call) -> dict[str, Any]:
    body, service = call.body, call.service
    customer = bodies.stripe_id(body, "customer_id")
    plan = bodies.plan(body, service.book.order)
    interval = bodies.interval(body) or "month"
    success_url, cancel_url = bodies.url(body, "success_url"), bodies.url(body, "cancel_url")
    trial_days = bodies.trial_days(body)
    price_id = _price(call, plan, interval)
    assert customer is not None
    assert success_url is not None
    assert cancel_url is not None
    session = await service.stripe().run(
        lambda client: checkout.create_session(
            client,
            customer=customer,
            price_id=price_id,
            success_url=success_url,
            cancel_url=cancel_url,
            trial_days=trial_days,
            automatic_tax=service.settings.stripe_automatic_tax_enabled,
            key=call.key("checkout"),
        )
    )
    service.metrics.checkout_sessions.inc()
    return session


@action("subscriptions", frozenset({"customer_id", "plan", "interval", "trial_days"}))
async def create_subscription(call: Call) -> dict[str, Any]:
    body, service = call.body, call.service
    customer = bodies.stripe_id(body, "customer_id")
    plan = bodies.plan(body, service.book.order)
    price_id = _price(call, plan, bodies.interval(body) or "month")
    trial_days = bodies.trial_days(body)
    assert customer is not None
    return await service.stripe().run(
        lambda client: checkout.create_subscription(
            client,
            customer=customer,
            price_id=price_id,
            trial_days=trial_days,
            automatic_tax=service.settings.stripe_automatic_tax_enabled,
            key=call.key("subscription"),
        )
    )


async def _change_of(call: Call) -> changes.Change:
    service, body = call.service, call.body
    subscription_id = bodies.path_id("subscription_id", call.params["subscription_id"])
    plan = bodies.plan(body, service.book.order)
    interval = bodies.interval(body)
    customer = bodies.stripe_id(body, "customer_id", required=False)
    catalog = service.current_catalog()
    found = await service.stripe().run(change_calls.retrieve, subscription_id)
    current = changes.current_of(found, service.book)
    if customer is not None and customer != current.customer:
        raise BillingError(404, "not_found", "no such subscription for this customer")
    return changes.classify(
        current, plan, interval or current.interval or "month", catalog, service.book
    )


async def _account_version(request: web.Request, customer: str) -> int | None:
    """The read model's version of the account; None if unknown or unreadable (no matter:
    the key then rests on the subscription's state alone)."""
    try:
        account = await read(request, request.app[STORE].get_account, customer)
    except Unavailable:
        return None
    return None if account is None else int(account["version"])


def _summary(change: changes.Change) -> dict[str, Any]:
    current = change.current
    return {
        "kind": change.kind,
        "effective": change.effective,
        "subscription_id": current.subscription_id,
        "customer_id": current.customer,
        "from": {"plan": current.plan, "interval": current.interval},
        "to": {"plan": change.plan, "interval": change.interval},
        "promised": change.promised(),
    }


@action("preview", frozenset({"plan", "interval", "customer_id"}))
async def preview_change(call: Call) -> dict[str, Any]:
    change = await _change_of(call)
    proration_date = int(time.time())
    amounts = await call.service.stripe().run(change_calls.preview_amounts, change, proration_date)
    call.service.metrics.previews.inc()
    effective_at = proration_date if change.effective == "now" else change.current.period_end
    return {
        **_summary(change),
        **amounts,
        "proration_date": proration_date if change.effective == "now" else None,
        "effective_at": effective_at,
    }


@action("change", frozenset({"plan", "interval", "customer_id", "proration_date"}))
async def apply_change(call: Call) -> dict[str, Any]:
    proration_date = bodies.timestamp(call.body, "proration_date")
    change = await _change_of(call)
    current = change.current
    # The key also names the state changed from (the subscription's price, pending plan and
    # payment method, the account version billstream serves) and a 10-minute window: a retry
    # before Stripe's webhook was folded sends the same key, while the same change again after
    # another one (schedule, withdraw, schedule) or after a new card is a new request. Stripe
    # replays failures too (a declined upgrade): the window bounds that to minutes.
    version = await _account_version(call.request, current.customer)
    key = call.key(
        "change",
        current.price_id,
        current.pending_plan,
        str(current.cancel_at_period_end),
        current.default_payment_method,
        str(version),
        window(CHANGE_KEY_WINDOW_SECONDS),
    )
    updated = await call.service.stripe().run(change_calls.apply, change, proration_date, key)
    call.service.metrics.changes.labels(change.kind).inc()
    return {
        **_summary(change),
        "applied": updated is not None,
        "subscription_status": None if updated is None else updated.get("status"),
    }


@action("default-payment-method", frozenset({"payment_method", "pay_open_invoice", "customer_id"}))
async def default_payment_method(call: Call) -> dict[str, Any]:
    subscription_id = bodies.path_id("subscription_id", call.params["subscription_id"])
    payment_method = bodies.stripe_id(call.body, "payment_method")
    pay = bodies.flag(call.body, "pay_open_invoice", True)
    customer = bodies.stripe_id(call.body, "customer_id", required=False)
    assert payment_method is not None
    key = call.key("payment-method")
    try:
        return await call.service.stripe().run(
            set_default, subscription_id, payment_method, pay, key, customer
        )
    except NotTheCustomers:
        raise BillingError(404, "not_found", "no such subscription for this customer") from None


@action("portal-sessions", frozenset({"customer_id", "return_url", "configuration"}))
async def create_portal_session(call: Call) -> dict[str, Any]:
    customer = bodies.stripe_id(call.body, "customer_id")
    return_url = bodies.url(call.body, "return_url")
    configuration = bodies.stripe_id(call.body, "configuration", required=False)
    assert customer is not None
    assert return_url is not None
    key = call.key("portal", window(portal.KEY_WINDOW_SECONDS))
    return await call.service.stripe().run(
        lambda client: portal.create_portal_session(
            client,
            customer=customer,
            return_url=return_url,
            configuration=configuration,
            key=key,
        )
    )


def add_billing_routes(app: web.Application, service: BillingService) -> None:
    app[BILLING] = service
    app.cleanup_ctx.append(service.context())
    router = app.router
    router.add_get("/billing/catalog", get_catalog, allow_head=False)
    router.add_post("/billing/customers", create_customer)
    router.add_post("/billing/checkout-sessions", create_checkout_session)
    router.add_post("/billing/subscriptions", create_subscription)
    subscription = "/billing/subscriptions/{subscription_id}"
    router.add_post(f"{subscription}/preview", preview_change)
    router.add_post(f"{subscription}/change", apply_change)
    router.add_post(f"{subscription}/default-payment-method", default_payment_method)
    router.add_post("/billing/portal-sessions", create_portal_session)
