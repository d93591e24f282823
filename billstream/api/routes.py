"""The read endpoints and the middleware that turns every failure into a documented JSON error."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from billstream.api import cursor
from billstream.api.auth import CHALLENGE, Forbidden, Unauthorized
from billstream.api.metrics import ApiMetrics
from billstream.api.params import (
    BadParameter,
    cohort_query,
    list_query,
    optional_timestamp,
    text_value,
    transition_query,
)
from billstream.api.scopes import request_scope
from billstream.api.state import served
from billstream.api.store import Store
from billstream.routing import account_key

STORE = web.AppKey("store", Store)
PLATFORM_ACCOUNT = web.AppKey("platform_account", str)  # STRIPE_ACCOUNT_ID, "" when unset
EXECUTOR = web.AppKey("executor", Executor)
METRICS = web.AppKey("metrics", ApiMetrics)

T = TypeVar("T")
log = logging.getLogger(__name__)


class Unavailable(Exception):
    """The read model cannot be read right now: a 503, never a 500."""


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(status: int, error: str, message: str, **extra: str) -> web.Response:
    return json_response({"error": error, "message": message, **extra}, status=status)


async def read(request: web.Request, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a store query in the thread pool; database trouble becomes Unavailable."""
    store = request.app[STORE]
    if not store.schema_ready.is_set():
        raise Unavailable("the read model is not migrated yet")
    call = functools.partial(query, *args, **kwargs)
    try:
        return await asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], call)
    except Exception as error:
        log.warning("read model query failed: %s", error)
        raise Unavailable("the read model is unavailable") from error


def _stripe_account(request: web.Request) -> str | None:
    """`?stripe_account=`: a connected account, or None for the platform (absent, its id)."""
    value = request.query.get("stripe_account")
    if value is None or value in ("", "platform", request.app.get(PLATFORM_ACCOUNT, "")):
        return None
    if not value.startswith("acct_"):
        raise BadParameter("stripe_account", "a Stripe account id (acct_…) or 'platform'")
    return text_value("stripe_account", value)


def _account_key(request: web.Request) -> tuple[str, str | None]:
    """(customer id, account key) of the path and `?stripe_account=`; the key is None when
    the token's scope excludes that account (answered 404, as an unknown account)."""
    customer_id = text_value("customer_id", request.match_info["customer_id"])
    account = _stripe_account(request)
    if not request_scope(request).allows(account):
        return customer_id, None
    return customer_id, account_key(customer_id, account)


async def get_account(request: web.Request) -> web.Response:
    customer_id, key = _account_key(request)
    if key is None:
        return error_response(404, "not_found", f"no account {customer_id!r}")
    as_of = optional_timestamp(request.query, "as_of")
    if as_of is not None:
        return await _get_account_as_of(request, customer_id, key, as_of)
    account = await read(request, request.app[STORE].get_account, key)
    if account is None:
        return error_response(404, "not_found", f"no account {customer_id!r}")
    return json_response(account)


async def _get_account_as_of(
    request: web.Request, customer_id: str, key: str, as_of: int
) -> web.Response:
    found = await read(request, request.app[STORE].get_account_as_of, key, as_of)
    if found is None:
        return error_response(404, "not_found", f"no account {customer_id!r}")
    if found.account is None:
        return error_response(404, "not_found", f"account {customer_id!r} has no state at {as_of}")
    return json_response(found.account)


async def list_accounts(request: web.Request) -> web.Response:
    query = list_query(request.query)
    scope = request_scope(request).accounts
    if "stripe_account" in request.query:
        wanted = _stripe_account(request)
        scope = frozenset({wanted}) if scope is None or wanted in scope else frozenset()
    rows = await read(
        request,
        request.app[STORE].list_accounts,
        limit=query.limit + 1,  # one more tells whether a next page exists
        after=query.after,
        plan=query.plan,
        payment_state=query.payment_state,
        feature=query.feature,
        stripe_accounts=scope,
    )
    items = rows[: query.limit]
    more = len(rows) > query.limit
    next_page = cursor.encode(items[-1]["customer_id"]) if more else None  # an account key
    return json_response({"items": [served(item) for item in items], "next": next_page})


async def get_transitions(request: web.Request) -> web.Response:
    customer_id, key = _account_key(request)
    if key is None:
        return error_response(404, "not_found", f"no account {customer_id!r}")
    query = transition_query(request.query)
    rows = await read(
        request,
        request.app[STORE].get_transitions,
        key,
        limit=query.limit + 1,  # one more tells whether a next page exists
        after=query.after,
        since=query.since,
        until=query.until,
    )
    if rows is None:
        return error_response(404, "not_found", f"no account {customer_id!r}")
    items = rows[: query.limit]
    more = len(rows) > query.limit
    next_page = cursor.encode_version(items[-1]["version"]) if more else None
    return json_response({"customer_id": customer_id, "items": items, "next": next_page})


def funnel(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of GET /funnels/<kind>."""

    async def get_funnel(request: web.Request) -> web.Response:
        return await _get_funnel(request, kind)

    return get_funnel


async def _get_funnel(request: web.Request, kind: str) -> web.Response:
    query = cohort_query(kind, request.query)
    rows = await read(request, request.app[STORE].get_cohorts, query)
    return json_response(
        {
            "kind": kind,
            "cohort": query.period,
            "from": query.since,
            "to": query.until,
            "breakdown": query.breakdown,
            "cohorts": rows,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/accounts", list_accounts, allow_head=False)
    app.router.add_get("/accounts/{customer_id}", get_account, allow_head=False)
    app.router.add_get("/accounts/{customer_id}/transitions", get_transitions, allow_head=False)
    app.router.add_get("/funnels/dunning", funnel("dunning"), allow_head=False)
    app.router.add_get("/funnels/sca", funnel("sca"), allow_head=False)


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bad input → 400, no token → 401, unknown route → 404, store down → 503; counted per
    route template."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except Unauthorized:
        response = json_response(
            {"error": "unauthorized", "message": "a valid bearer token is required"},
            status=401,
            headers=CHALLENGE,
        )
    except Forbidden:
        response = error_response(
            403, "forbidden", "this route spans Stripe accounts: it needs an unscoped token"
        )
    except BadParameter as error:
        response = error_response(400, "bad_request", error.message, parameter=error.parameter)
    except Unavailable as error:
        response = error_response(503, "unavailable", str(error))
    except web.HTTPException as error:  # aiohttp's own: no route, method not allowed
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        response = json_response(
            {"error": error.reason.lower().replace(" ", "_"), "message": error.reason},
            status=error.status,
            headers=allow,
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = error_response(500, "internal", "internal error")
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests.labels(route, str(response.status)).inc()
    metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
    return response
