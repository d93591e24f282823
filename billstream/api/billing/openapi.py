"""The `/billing/` part of GET /openapi.json: every route, body and answer (schemathesis checks)."""

from __future__ import annotations

from typing import Any

from billstream.api.billing import bodies
from billstream.api.billing.changes import KINDS
from billstream.api.billing.idempotency import HEADER, MAX_CLIENT_KEY
from billstream.api.billing.plans import INTERVALS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
STRIPE_ID = {"type": "string", "pattern": f"^{bodies.STRIPE_ID.pattern}$", "example": "cus_123"}
URL = {
    "type": "string",
    "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$",
    "maxLength": 200,
    "example": "https://example.com/billing",
}
INTERVAL = {"type": "string", "enum": list(INTERVALS)}
TRIAL = {"type": "integer", "minimum": 1, "maximum": bodies.MAX_TRIAL_DAYS}
STATE = _obj(
    {
        "plan": STRING,
        "interval": _nullable(STRING),
        "pending_plan": _nullable(STRING),
        "cancel_at_period_end": {"type": "boolean"},
    },
    ["plan", "interval", "pending_plan", "cancel_at_period_end"],
)
PLAN_INTERVAL = _obj({"plan": STRING, "interval": _nullable(STRING)}, ["plan", "interval"])
SUMMARY = {
    "kind": {"type": "string", "enum": list(KINDS)},
    "effective": {"type": "string", "enum": ["now", "period_end"]},
    "subscription_id": STRING,
    "customer_id": STRING,
    "from": PLAN_INTERVAL,
    "to": PLAN_INTERVAL,
    "promised": {**STATE, "description": "the account state billstream serves once applied"},
}
PRICE = _obj(
    {
        "price_id": STRING,
        "lookup_key": _nullable(STRING),
        "unit_amount": _nullable(INTEGER),
        "currency": STRING,
        "product": STRING,
        "product_name": _nullable(STRING),
    },
    ["price_id", "lookup_key", "unit_amount", "currency", "product", "product_name"],
)


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _obj(properties, required)}}}


SCHEMAS: dict[str, Any] = {
    "BillingError": _obj(
        {
            "error": STRING,
            "message": STRING,
            "field": {**STRING, "description": "the body field or header at fault"},
            "code": {**STRING, "description": "Stripe's error code"},
            "decline_code": STRING,
        },
        ["error", "message"],
    ),
    "Catalog": _obj(
        {
            "plans": {
                "type": "array",
                "items": _obj(
                    {
                        "plan": STRING,
                        "tier": INTEGER,
                        "prices": {
                            "type": "object",
                            "properties": {"month": PRICE, "year": PRICE},
                            "additionalProperties": False,
                        },
                    },
                    ["plan", "tier", "prices"],
                ),
            },
            "intervals": {"type": "array", "items": INTERVAL},
            "yearly_available": {"type": "boolean"},
            "refreshed_at": INTEGER,
        },
        ["plans", "intervals", "yearly_available", "refreshed_at"],
    ),
    "Customer": _obj(
        {"customer_id": STRING, "user_id": STRING, "created": {"type": "boolean"}},
        ["customer_id", "user_id", "created"],
    ),
    "CheckoutSession": _obj(
        {
            "id": STRING,
            "url": _nullable(STRING),
            "expires_at": _nullable(INTEGER),
            "customer": STRING,
        },
        ["id", "url", "expires_at", "customer"],
    ),
    "Subscription": _obj(
        {
            "subscription_id": STRING,
            "status": _nullable(STRING),
            "intent": _nullable({"type": "string", "enum": ["payment", "setup"]}),
            "client_secret": _nullable(STRING),
        },
        ["subscription_id", "status", "intent", "client_secret"],
    ),
    "ChangePreview": _obj(
        {
            **SUMMARY,
            "amount_due_now": INTEGER,
            "next_invoice_amount": _nullable(INTEGER),
            "currency": _nullable(STRING),
            "proration_date": _nullable(INTEGER),
            "effective_at": _nullable(INTEGER),
        },
        [
            *SUMMARY,
            "amount_due_now",
            "next_invoice_amount",
            "currency",
            "proration_date",
            "effective_at",
        ],
    ),
    "Change": _obj(
        {**SUMMARY, "applied": {"type": "boolean"}, "subscription_status": _nullable(STRING)},
        [*SUMMARY, "applied", "subscription_status"],
    ),
    "DefaultPaymentMethod": _obj(
        {
            "subscription_id": STRING,
            "default_payment_method": STRING,
            "status": _nullable(STRING),
            "latest_invoice": _nullable(
                _obj({"id": STRING, "status": _nullable(STRING)}, ["id", "status"])
            ),
        },
        ["subscription_id", "default_payment_method", "status", "latest_invoice"],
    ),
    "PortalSession": _obj(
        {"id": STRING, "url": STRING, "customer": STRING}, ["id", "url", "customer"]
    ),
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("BillingError")}}}


RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}}
ERRORS: dict[str, Any] = {
    "400": _error("a body field (or the Idempotency-Key header) is invalid; `field` names it"),
    "401": {
        "description": "no bearer token, or not one of API_TOKENS",
        "content": {JSON: {"schema": _ref("Error")}},
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": STRING}},
    },
    "402": _error("the card was declined; `code` / `decline_code` are Stripe's"),
    "404": _error("Stripe has no such object (or it is another customer's)"),
    "409": _error("the object's state does not allow it, or an idempotency key reused"),
    "422": _error("unknown plan or interval, or one the catalog does not sell"),
    "429": {**_error("Stripe is rate limiting; retry after `Retry-After`"), "headers": RETRY_AFTER},
    "503": {
        **_error("Stripe unreachable, catalog not loaded, or STRIPE_API_KEY unset"),
        "headers": RETRY_AFTER,
    },
}
IDEMPOTENCY = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "replays the first answer to a retry; derived from the request if absent",
    "schema": {
        "type": "string",
        "pattern": "^[!-~]+$",
        "minLength": 1,
        "maxLength": MAX_CLIENT_KEY,
    },
}
SUBSCRIPTION_ID = {
    "name": "subscription_id",
    "in": "path",
    "required": True,
    "schema": {**STRIPE_ID, "example": "sub_123"},
}


def _post(
    summary: str, body: dict[str, Any], answer: str, path: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [*(path or []), IDEMPOTENCY],
            "requestBody": body,
            "responses": {
                "200": {"description": "done", "content": {JSON: {"schema": _ref(answer)}}},
                **ERRORS,
            },
        }
    }


def paths(plans: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The billing paths; `plans` (BILLING_PLAN_ORDER) makes `plan` an enum of them."""
    plan: dict[str, Any] = {"type": "string", "minLength": 1, "example": "PRO"}
    if plans:
        plan = {"type": "string", "enum": list(plans), "example": plans[-1]}
    return _paths(plan)


def _paths(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "/billing/catalog": {
            "get": {
                "summary": "the plans with their monthly/yearly prices (served from memory)",
                "responses": {
                    "200": {
                        "description": "catalog",
                        "content": {JSON: {"schema": _ref("Catalog")}},
                    },
                    "401": ERRORS["401"],
                    "503": ERRORS["503"],
                },
            }
        },
        "/billing/customers": _post(
            "create or return the Stripe customer of an application user",
            _body(
                {
                    "user_id": {"type": "string", "pattern": f"^{bodies.USER_ID.pattern}$"},
                    "email": {"type": "string", "format": "email", "maxLength": 200},
                },
                ["user_id"],
            ),
            "Customer",
        ),
        "/billing/checkout-sessions": _post(
            "a Checkout session (mode=subscription) for a plan and interval",
            _body(
                {
                    "customer_id": STRIPE_ID,
                    "plan": plan,
                    "interval": INTERVAL,
                    "success_url": URL,
                    "cancel_url": URL,
                    "trial_days": TRIAL,
                },
                ["customer_id", "plan", "success_url", "cancel_url"],
            ),
            "CheckoutSession",
        ),
        "/billing/subscriptions": _post(
            "an incomplete subscription and the client secret to confirm with Stripe Elements",
            _body(
                {"customer_id": STRIPE_ID, "plan": plan, "interval": INTERVAL, "trial_days": TRIAL},
                ["customer_id", "plan"],
            ),
            "Subscription",
        ),
        "/billing/subscriptions/{subscription_id}/preview": _post(
            "classify a plan change and show what it costs now (Stripe's invoice preview)",
            _body({"plan": plan, "interval": INTERVAL, "customer_id": STRIPE_ID}, ["plan"]),
            "ChangePreview",
            [SUBSCRIPTION_ID],
        ),
        "/billing/subscriptions/{subscription_id}/change": _post(
            "apply a plan change by the proration policy (docs/proration-policy.md)",
            _body(
                {
                    "plan": plan,
                    "interval": INTERVAL,
                    "customer_id": STRIPE_ID,
                    "proration_date": {"type": "integer", "minimum": 1, "maximum": 2**40 - 1},
                },
                ["plan"],
            ),
            "Change",
            [SUBSCRIPTION_ID],
        ),
        "/billing/subscriptions/{subscription_id}/default-payment-method": _post(
            "set the subscription's default payment method and pay its open invoice with it",
            _body(
                {
                    "payment_method": STRIPE_ID,
                    "pay_open_invoice": {"type": "boolean"},
                    "customer_id": STRIPE_ID,
                },
                ["payment_method"],
            ),
            "DefaultPaymentMethod",
            [SUBSCRIPTION_ID],
        ),
        "/billing/portal-sessions": _post(
            "a customer portal session to redirect to",
            _body(
                {"customer_id": STRIPE_ID, "return_url": URL, "configuration": STRIPE_ID},
                ["customer_id", "return_url"],
            ),
            "PortalSession",
        ),
    }
