"""`billstream drift [--heal]`: how far the served state is from Stripe's, and the repair.

Lists every subscription (`status=all`, paged, 429s backed off) and the subscription schedules
of those customers (a schedule's next phase is a `pending_plan`), folds them into the accounts
billstream would serve, compares with what the api serves, and prints the differences by field.
`--heal` publishes each drifting customer's subscriptions to `stripe.events` as synthetic
events (`source: drift`, ids derived from the objects), so the reducer repairs the state like
any event; audit again once the worker has folded them and it finds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import stripe
from aiokafka.errors import KafkaError

from billstream.backfill.lister import Backoff
from billstream.backfill.publisher import Publisher, encode_event
from billstream.drift.audit import (
    SCHEDULE_UPDATED,
    Difference,
    by_field,
    differences,
    drift_event,
    expected_accounts,
)
from billstream.processors.config import ReducerConfig
from billstream.routing import routing_key
from billstream.settings import Settings
from billstream.stripe_client import StripeNotConfigured, describe_stripe_error, make_stripe_client
from billstream.topics import ensure_topics
from billstream.verify.readers import SourceError, api_accounts

SOURCE = "drift"
SHOWN = 20  # differences printed in full


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url", default=None, help="the api (default http://API_HOST:API_PORT)"
    )
    parser.add_argument(
        "--heal", action="store_true", help="publish Stripe's objects of drifting customers"
    )


def subscriptions(
    client: stripe.StripeClient,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Every subscription, any status, as plain dicts (Stripe's default API shapes)."""
    params: dict[str, Any] = {"status": "all", "limit": 100}
    return _listed(client.v1.subscriptions.list, params, backoff, sleep)


def schedules(
    client: stripe.StripeClient,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Every subscription schedule, any status: an ended one clears a pending plan it gave."""
    return _listed(client.v1.subscription_schedules.list, {"limit": 100}, backoff, sleep)


def _listed(
    fetch: Callable[[Any], Any],
    params: dict[str, Any],
    backoff: Backoff | None,
    sleep: Callable[[float], None],
) -> Iterator[dict[str, Any]]:
    backoff = backoff or Backoff()
    while True:
        for attempt in range(backoff.attempts):
            try:
                page = fetch(params)
                break
            except stripe.RateLimitError:
                if attempt == backoff.attempts - 1:
                    raise
                sleep(backoff.delay(attempt))
        items = [item.to_dict() for item in page.data]
        yield from items
        if not page.has_more or not items:
            return
        params["starting_after"] = items[-1]["id"]


async def _heal(settings: Settings, events: list[dict[str, Any]]) -> None:
    await ensure_topics(settings)
    publisher = Publisher(settings, source=SOURCE)
    await publisher.start()
    try:
        await publisher.publish([encode_event(event) for event in events])
    finally:
        await publisher.stop()


@dataclass
class Audit:
    """One audit: what was compared, what differs, and (with heal) what was published."""

    subscriptions: int
    customers: int
    found: list[Difference]
    seconds: float
    healed_events: int = 0

    @property
    def drifting(self) -> list[str]:
        return sorted({difference.customer_id for difference in self.found})


def audit(
    settings: Settings, client: stripe.StripeClient, api_url: str, heal: bool = False
) -> Audit:
    """Compare; with `heal`, publish the drifting customers' subscriptions as events."""
    started = time.monotonic()
    tokens = settings.api_token_values()
    now = int(time.time())
    events = [drift_event(sub, now) for sub in subscriptions(client)]
    customers = {routing_key(event) for event in events}
    events += [
        event
        for schedule in schedules(client)
        if routing_key(event := drift_event(schedule, now, SCHEDULE_UPDATED)) in customers
    ]
    expected = expected_accounts(events, ReducerConfig.from_settings(settings))
    served = asyncio.run(api_accounts(api_url, tokens[0] if tokens else None))
    found = differences(expected, served)
    subscription_count = sum(event["type"] != SCHEDULE_UPDATED for event in events)
    result = Audit(subscription_count, len(expected), found, time.monotonic() - started)
    drifting = set(result.drifting)
    if heal and drifting:
        repairs = [event for event in events if routing_key(event) in drifting]
        asyncio.run(_heal(settings, repairs))
        result.healed_events = len(repairs)
    return result


def run(settings: Settings, args: argparse.Namespace) -> int:
    api_url = args.api_url or f"http://{settings.api_host}:{settings.api_port}"
    try:
        result = audit(settings, make_stripe_client(settings), api_url, heal=args.heal)
    except StripeNotConfigured as error:
        print(f"billstream drift: {error}", file=sys.stderr)
        return 2
    except stripe.StripeError as error:
        print(f"billstream drift: {describe_stripe_error(error)}", file=sys.stderr)
        return 1
    except (SourceError, KafkaError) as error:
        print(f"billstream drift: {error}", file=sys.stderr)
        return 1
    print(
        f"billstream drift: {result.customers} customers checked against {result.subscriptions} "
        f"Stripe subscriptions in {result.seconds:.1f} s; {len(result.drifting)} drift"
    )
    for field, count in sorted(by_field(result.found).items()):
        print(f"  {field}: {count}")
    for difference in result.found[:SHOWN]:
        print(
            f"    {difference.customer_id} {difference.field}: "
            f"stripe {difference.stripe!r}, served {difference.served!r}"
        )
    if result.healed_events:
        healed = len(result.drifting)
        print(f"billstream drift: healed {healed} customers ({result.healed_events} events)")
    return 0
