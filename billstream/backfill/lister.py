"""Listing Stripe's Events API page by page (newest first, as Stripe returns it), with 429 backoff.

Pages are fetched one by one (billstream.stripe_pages) so a rate-limited page is retried on its
own after a pause, without restarting the walk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import stripe

from billstream import stripe_pages
from billstream.allowlist import EventAllowlist
from billstream.stripe_pages import Backoff

__all__ = ["Backoff", "events_newest_first", "fetch_page", "narrow_patterns", "server_filter"]

# Stripe accepts up to 20 exact types in `types`; anything else is filtered here.
MAX_SERVER_TYPES = 20


def _covered(pattern: str, allowlist: tuple[str, ...]) -> bool:
    if "*" in allowlist:
        return True
    if pattern == "*":
        return False
    if not pattern.endswith(".*"):
        return EventAllowlist(allowlist).allows(pattern)
    prefix = pattern[:-1]  # "invoice." of "invoice.*"
    return any(p.endswith(".*") and prefix.startswith(p[:-1]) for p in allowlist)


def narrow_patterns(allowlist: tuple[str, ...], requested: tuple[str, ...]) -> tuple[str, ...]:
    """`--types` (all of the allowlist when empty); a type ingest would ignore is an error."""
    for pattern in requested:
        if not _covered(pattern, allowlist):
            raise ValueError(f"--types {pattern!r} is not in STRIPE_WEBHOOK_ALLOWED_EVENTS")
    return requested or allowlist


def server_filter(patterns: tuple[str, ...]) -> dict[str, Any]:
    """The Events API filter that does the same work server-side, when one exists."""
    if "*" in patterns:
        return {}
    if len(patterns) == 1:
        return {"type": patterns[0]}  # `type` accepts one `prefix.*` wildcard
    if len(patterns) <= MAX_SERVER_TYPES and not any("*" in p for p in patterns):
        return {"types": list(patterns)}
    return {}


def fetch_page(
    client: stripe.StripeClient,
    params: dict[str, Any],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    stripe_account: str | None = None,
) -> Any:
    """One Events API page, through the shared page fetch (rate limit, 429 backoff); of a
    connected account's events with `stripe_account` (the `Stripe-Account` header)."""
    listing = stripe_pages.in_account(client.v1.events.list, stripe_account)
    return stripe_pages.fetch_page(listing, params, backoff, sleep)


def events_newest_first(
    client: stripe.StripeClient,
    since: int,
    patterns: tuple[str, ...],
    *,
    page_size: int = 100,
    undelivered: bool = False,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stripe_account: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every allowed event created at or after `since`, as plain dicts, newest first.

    `undelivered`: only those Stripe has not yet delivered successfully to every endpoint
    (the Events API's `delivery_success=false`); published again, they de-duplicate by id if
    a delivery does arrive after all. `stripe_account`: a connected account's events, each
    given its `account` as a Connect webhook names it (so it is keyed as ingest keys it).
    """
    params: dict[str, Any] = {"limit": page_size, "created": {"gte": since}}
    if undelivered:
        params["delivery_success"] = False
    params.update(server_filter(patterns))
    allowlist = EventAllowlist(patterns)  # ingest's rule: backfill publishes what ingest would
    while True:
        page = fetch_page(client, params, backoff or Backoff(), sleep, stripe_account)
        events = [item.to_dict() for item in page.data]
        if stripe_account is not None:
            for event in events:
                event.setdefault("account", stripe_account)
        for event in events:
            if allowlist.allows(str(event.get("type", ""))):
                yield event
        if not page.has_more or not events:
            return
        params["starting_after"] = events[-1]["id"]
