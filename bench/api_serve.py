"""A server for bench/api.py: the read API over an existing database, or a bare handler."""

from __future__ import annotations

import argparse
import logging

import orjson
from aiohttp import web

from billstream.api.app import create_app
from billstream.api.store import Store
from billstream.settings import Settings

# The read API serves with authentication on, as in production; the bare handler ignores it.
BENCH_TOKEN = "bench-api-token-0123456789"
AUTH_HEADER = f"Authorization: Bearer {BENCH_TOKEN}"
BARE_ACCOUNT = {
    "customer_id": "cus_000000",
    "plan": "PRO",
    "interval": "month",
    "subscription_id": "sub_000000",
    "subscription_status": "active",
    "payment_state": "ok",
    "cancel_at_period_end": False,
    "pending_plan": None,
    "current_period_end": 1767225600,
    "deleted": False,
    "version": 1,
    "updated_by_event": "evt_000000",
    "updated_at": 1767225600,
}


def bare_app() -> web.Application:
    """The baseline: same route and body shape, no database, no middleware."""

    async def handler(request: web.Request) -> web.Response:
        body = {**BARE_ACCOUNT, "customer_id": request.match_info["customer_id"]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/accounts/{customer_id}", handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", help="serve the read API over this DATABASE_URL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.database:
        store = Store(args.database)
        store.migrate()
        settings = Settings(_env_file=None, api_tokens=BENCH_TOKEN)
        app = create_app(settings, store)
    else:
        app = bare_app()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
