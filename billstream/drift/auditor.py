"""One drift audit: list Stripe's subscriptions (resumably), fold them, compare with the api,
and with `heal` publish the drifting customers' objects to `stripe.events` (`source: drift`).

Shared by the one-off `billstream drift` and the periodic `billstream drift-audit`; the pure
parts are in `audit.py`, the listing in `listing.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe

from billstream.backfill.publisher import Publisher, encode_event
from billstream.drift.audit import (
    SCHEDULE_UPDATED,
    Difference,
    differences,
    drift_event,
    expected_accounts,
)
from billstream.drift.listing import Listing, account_path, list_remaining, list_schedules
from billstream.processors.config import ReducerConfig
from billstream.routing import event_key, routing_key
from billstream.settings import Settings
from billstream.topics import ensure_topics
from billstream.verify.readers import api_accounts

SOURCE = "drift"


@dataclass
class Audit:
    """One audit: what was compared, what differs, and (with heal) what was published."""

    subscriptions: int
    customers: int
    found: list[Difference]
    seconds: float
    pages: int = 0  # Stripe list calls this run made (a resumed listing makes fewer)
    resumed: bool = False
    healed_events: int = 0

    @property
    def drifting(self) -> list[str]:
        return sorted({difference.customer_id for difference in self.found})


async def publish_heal(settings: Settings, events: list[dict[str, Any]]) -> None:
    """The repair: Stripe's objects as events, acknowledged by Kafka before this returns."""
    await ensure_topics(settings)
    publisher = Publisher(settings, source=SOURCE)
    await publisher.start()
    try:
        await publisher.publish([encode_event(event) for event in events])
    finally:
        await publisher.stop()


async def _account_events(
    client: stripe.StripeClient,
    listing: Listing,
    stripe_account: str | None,
    on_page: Callable[[int], object],
) -> tuple[list[dict[str, Any]], int, int]:
    """One Stripe account's objects as drift events: (events, subscriptions, list calls)."""
    pages = await asyncio.to_thread(
        list_remaining, client, listing, on_page=on_page, stripe_account=stripe_account
    )
    at = listing.position.started
    events = [
        drift_event(sub, at, stripe_account=stripe_account) for sub in listing.subscriptions()
    ]
    subscription_count = len(events)
    # The schedules of the audited customers: a schedule's next phase is a pending plan.
    customers = {routing_key(event) for event in events}
    schedules = await asyncio.to_thread(list_schedules, client, stripe_account=stripe_account)
    for schedule in schedules:
        event = drift_event(schedule, at, SCHEDULE_UPDATED, stripe_account)
        if routing_key(event) in customers:
            events.append(event)
    return events, subscription_count, pages + 1


def account_listings(
    accounts: Sequence[str], path: Path | None = None
) -> dict[str | None, Listing]:
    """A listing for the platform (None) and one per connected account audited, each with
    its own resume file beside `path` (in memory without one)."""
    return {
        account: Listing(None if path is None else account_path(path, account))
        for account in (None, *accounts)
    }


async def run_audit(
    settings: Settings,
    client: stripe.StripeClient,
    api_url: str,
    listings: Mapping[str | None, Listing],
    heal: bool = False,
    on_page: Callable[[int], object] = lambda n: None,
) -> Audit:
    """Finish each Stripe account's listing (None: the platform; a connected account's with
    `Stripe-Account`), compare all with what the api serves, heal if asked; the listings are
    consumed only when the whole audit succeeded."""
    started = time.monotonic()
    resumed = any(listing.resumed for listing in listings.values())
    events: list[dict[str, Any]] = []
    subscription_count = pages = 0
    for stripe_account, listing in listings.items():
        found_events, subscriptions, calls = await _account_events(
            client, listing, stripe_account, on_page
        )
        events += found_events
        subscription_count += subscriptions
        pages += calls
    config = ReducerConfig.from_settings(settings)
    expected = expected_accounts(events, config)
    tokens = settings.api_token_values()
    served = await api_accounts(api_url, tokens[0] if tokens else None)
    found = differences(expected, served)
    result = Audit(subscription_count, len(expected), found, 0.0, pages=pages, resumed=resumed)
    drifting = set(result.drifting)
    if heal and drifting:
        platform = config.platform_account
        repairs = [event for event in events if event_key(event, platform) in drifting]
        await publish_heal(settings, repairs)
        result.healed_events = len(repairs)
    for listing in listings.values():
        listing.finish()
    result.seconds = time.monotonic() - started
    return result
