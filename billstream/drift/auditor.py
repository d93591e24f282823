"""One drift audit: list Stripe's subscriptions (resumably), fold them, compare with the api,
and with `heal` publish the drifting customers' objects to `stripe.events` (`source: drift`).

Shared by the one-off `billstream drift` and the periodic `billstream drift-audit`; the pure
parts are in `audit.py`, the listing in `listing.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from billstream.drift.listing import Listing, list_remaining, list_schedules
from billstream.processors.config import ReducerConfig
from billstream.routing import routing_key
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


async def run_audit(
    settings: Settings,
    client: stripe.StripeClient,
    api_url: str,
    listing: Listing,
    heal: bool = False,
    on_page: Callable[[int], object] = lambda n: None,
) -> Audit:
    """Finish `listing`, compare, heal if asked; the listing is consumed only on success."""
    started = time.monotonic()
    resumed = listing.resumed
    pages = await asyncio.to_thread(list_remaining, client, listing, on_page=on_page)
    at = listing.position.started
    events = [drift_event(sub, at) for sub in listing.subscriptions()]
    subscription_count = len(events)
    # The schedules of the audited customers: a schedule's next phase is a pending plan.
    customers = {routing_key(event) for event in events}
    for schedule in await asyncio.to_thread(list_schedules, client):
        event = drift_event(schedule, at, SCHEDULE_UPDATED)
        if routing_key(event) in customers:
            events.append(event)
    pages += 1
    expected = expected_accounts(events, ReducerConfig.from_settings(settings))
    tokens = settings.api_token_values()
    served = await api_accounts(api_url, tokens[0] if tokens else None)
    found = differences(expected, served)
    result = Audit(subscription_count, len(expected), found, 0.0, pages=pages, resumed=resumed)
    drifting = set(result.drifting)
    if heal and drifting:
        repairs = [event for event in events if routing_key(event) in drifting]
        await publish_heal(settings, repairs)
        result.healed_events = len(repairs)
    listing.finish()
    result.seconds = time.monotonic() - started
    return result
