"""GET /openapi.json: the API contract, kept honest by the schemathesis test against the app."""

from __future__ import annotations

from typing import Any

from billstream.api.billing import openapi as billing
from billstream.api.cohorts import BREAKDOWNS, PERIODS, WITHIN_DAYS
from billstream.api.params import DEFAULT_LIMIT, MAX_LIMIT, MAX_TEXT
from billstream.api.state import PAYMENT_STATES
from billstream.limits import FEATURE_KEY_MAX_CHARS, FEATURES_MAX

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": kind, "nullable": True}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(name)}}}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}


def _funnel(kind: str) -> dict[str, Any]:
    outcome = "recovered" if kind == "dunning" else "completed"
    median = "median_seconds_to_recover" if kind == "dunning" else "median_seconds_to_complete"
    counts = {"type": "integer", "minimum": 0}
    within = _obj({f"{days}d": counts for days in WITHIN_DAYS}, [f"{d}d" for d in WITHIN_DAYS])
    row = _obj(
        {
            "cohort": {"type": "string", "description": "YYYY-MM, or the Monday YYYY-MM-DD"},
            "decline_code": _nullable("string"),
            "plan": _nullable("string"),
            "entered": counts,
            outcome: counts,
            f"{outcome}_within": within,
            "lost": counts,
            "open": counts,
            median: {"type": "number", "nullable": True},
        },
        ["cohort", "entered", outcome, f"{outcome}_within", "lost", "open", median],
    )
    return _obj(
        {
            "kind": {"type": "string", "enum": [kind]},
            "cohort": {"type": "string", "enum": list(PERIODS)},
            "from": _nullable("integer"),
            "to": _nullable("integer"),
            "breakdown": {"type": "string", "enum": list(BREAKDOWNS), "nullable": True},
            "cohorts": {"type": "array", "items": row},
        },
        ["kind", "cohort", "from", "to", "breakdown", "cohorts"],
    )


# Event time: unix seconds ("1764547200") or RFC 3339 with an offset ("2025-12-01T00:00:00Z").
TIMESTAMP = {"type": "string", "example": "2025-12-01T00:00:00Z"}
ERRORS = {
    "400": _json("Error", "a path or query value is invalid; `parameter` names it"),
    "401": {
        **_json("Error", "no bearer token, or not one of API_TOKENS"),
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    },
    "503": _json("Error", "the read model is unavailable (database down, not migrated yet)"),
}
CUSTOMER_ID = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "description": "Stripe customer id (the topic key)",
    "schema": TEXT,
    "example": "cus_123",
}

SCHEMAS: dict[str, Any] = {
    "Account": _obj(
        {
            "customer_id": {"type": "string"},
            "plan": {"type": "string"},
            "interval": _nullable("string"),
            "subscription_id": _nullable("string"),
            "subscription_status": _nullable("string"),
            "payment_state": {"type": "string", "enum": list(PAYMENT_STATES)},
            "cancel_at_period_end": {"type": "boolean"},
            "pending_plan": _nullable("string"),
            "current_period_end": _nullable("integer"),
            "deleted": {"type": "boolean"},
            "version": {"type": "integer", "minimum": 0},
            "updated_by_event": _nullable("string"),
            "updated_by_event_type": _nullable("string"),
            "updated_at": _nullable("integer"),
            "features": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": FEATURE_KEY_MAX_CHARS},
                "maxItems": FEATURES_MAX,
                "description": "the customer's active entitlements: feature lookup keys, sorted",
            },
            "stripe_account": {
                **_nullable("string"),
                "description": "the connected account (Stripe Connect); null: the platform's own",
            },
        }
    ),
    "AccountPage": _obj(
        {
            "items": {"type": "array", "items": _ref("Account")},
            "next": {
                **_nullable("string"),
                "description": "cursor for `after`; null on the last page",
            },
        }
    ),
    "Transition": _obj(
        {
            "version": {"type": "integer", "minimum": 0},
            "previous_version": {
                **_nullable("integer"),
                "description": "the version it replaced as seen by the read model",
            },
            "event_id": _nullable("string"),
            "event_type": _nullable("string"),
            "occurred_at": _nullable("integer"),
            "changes": {
                "type": "object",
                "description": "field -> {from, to}; every field on an account's first version",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"from": {}, "to": {}},
                    "required": ["from", "to"],
                },
            },
        }
    ),
    "TransitionList": _obj(
        {
            "customer_id": {"type": "string"},
            "items": {"type": "array", "items": _ref("Transition")},
            "next": _nullable("string"),
        }
    ),
    **{f"{kind.capitalize()}Funnel": _funnel(kind) for kind in ("dunning", "sca")},
    "Error": _obj(
        {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "parameter": {"type": "string"},
        },
        required=["error", "message"],
    ),
    "Status": _obj({"status": {"type": "string", "enum": ["ok", "ready", "not_ready"]}}),
}


def _funnel_path(kind: str) -> Any:
    outcome = "recovered" if kind == "dunning" else "completed"
    return _get(
        f"{kind} cohorts: episodes by the period they opened, {outcome} within 1-30 days, "
        "lost, open, median time",
        {"200": _json(f"{kind.capitalize()}Funnel", "the cohorts"), **ERRORS},
        [
            _query("from", TIMESTAMP, "episodes opened at or after this (event time)"),
            _query("to", TIMESTAMP, "episodes opened before this (event time)"),
            _query("cohort", {"type": "string", "enum": list(PERIODS)}, "month (default) or week"),
            _query("breakdown", {"type": "string", "enum": list(BREAKDOWNS)}, "split each cohort"),
        ],
    )


# Routes anyone may call: probes and this document (`/metrics` unless API_METRICS_AUTH=true).
OPEN: list[dict[str, list[str]]] = []


def _get(
    summary: str,
    responses: dict[str, Any],
    parameters: list[Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> Any:
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if security is not None:
        operation["security"] = security
    return {"get": operation}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


STRIPE_ACCOUNT = _query(
    "stripe_account",
    {"type": "string"},
    "the customer's Stripe account: acct_… (Connect), or `platform` / absent for the platform's",
)

PATHS: dict[str, Any] = {
    "/accounts": _get(
        "accounts in customer_id order, filtered, one keyset page at a time",
        {"200": _json("AccountPage", "one page"), **ERRORS},
        [
            _query("plan", TEXT, "only accounts on this plan"),
            _query("payment_state", {"type": "string", "enum": list(PAYMENT_STATES)}, "filter"),
            _query(
                "feature",
                {**TEXT, "maxLength": FEATURE_KEY_MAX_CHARS},
                "only accounts with an active entitlement to this feature (its lookup key)",
            ),
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "page size",
            ),
            STRIPE_ACCOUNT,
            _query("after", {"type": "string"}, "the previous page's `next`"),
        ],
    ),
    "/accounts/{customer_id}": _get(
        "the account state (DESIGN.md, Account state), now or as of an event time",
        {
            "200": _json("Account", "the account"),
            "404": _json("Error", "unknown, or no state yet at as_of"),
            **ERRORS,
        },
        [
            CUSTOMER_ID,
            STRIPE_ACCOUNT,
            _query("as_of", TIMESTAMP, "event time: the state the account had then"),
        ],
    ),
    "/accounts/{customer_id}/transitions": _get(
        "the account's state changes with causing event id and type, in version order",
        {"200": _json("TransitionList", "changes"), "404": _json("Error", "unknown"), **ERRORS},
        [
            CUSTOMER_ID,
            STRIPE_ACCOUNT,
            _query("since", TIMESTAMP, "only changes whose event time is at or after this"),
            _query("until", TIMESTAMP, "only changes whose event time is before this"),
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "page size",
            ),
            _query("after", {"type": "string"}, "the previous page's `next`"),
        ],
    ),
    "/funnels/dunning": _funnel_path("dunning"),
    "/funnels/sca": _funnel_path("sca"),
    "/healthz": _get("process up", {"200": _json("Status", "up")}, security=OPEN),
    "/readyz": _get(
        "read model reachable and writable, consumer assigned",
        {"200": _json("Status", "ready"), "503": _json("Status", "not ready")},
        security=OPEN,
    ),
    "/metrics": _get(
        "Prometheus metrics; needs the token only with API_METRICS_AUTH=true",
        {
            "200": {
                "description": "text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": ERRORS["401"],
        },
        security=OPEN,  # document() requires the token when API_METRICS_AUTH=true
    ),
    "/openapi.json": _get(
        "this document",
        {"200": {"description": "OpenAPI 3.0", "content": {JSON: {"schema": {"type": "object"}}}}},
        security=OPEN,
    ),
}


def document(metrics_auth: bool = False, plans: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the api (`metrics_auth`: API_METRICS_AUTH; `plans`:
    BILLING_PLAN_ORDER, which the billing bodies' `plan` is one of)."""
    paths = {**PATHS, **billing.paths(plans)}
    if metrics_auth:
        paths["/metrics"] = {"get": {**PATHS["/metrics"]["get"], "security": [{"bearer": []}]}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "billstream API: read model and billing actions", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **billing.SCHEMAS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "one of API_TOKENS (unless the api runs with API_AUTH=none)",
                }
            },
        },
        "security": [{"bearer": []}],
    }
