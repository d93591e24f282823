"""One run of periodic undelivered-event recovery: what `billstream backfill --undelivered` does,
from where the last run (or the one-off command) stopped.

The Events API's `delivery_success=false` lists events still pending or failed at some endpoint
(it goes back 30 days). Both share the checkpoint `var/backfill/<topic>.undelivered.json`: a run
lists only events created at or after the newest one already published, so an event is
re-published only after a lost checkpoint (a duplicate the worker skips by id). Without a
checkpoint a run starts 30 days back, Stripe's retention.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import stripe

from billstream.backfill import checkpoint as checkpoints
from billstream.backfill.checkpoint import Checkpoint
from billstream.backfill.lister import events_newest_first
from billstream.backfill.publisher import Publisher, Spool
from billstream.backfill.runner import publish_spool, spool_events
from billstream.backfill.since import EVENTS_RETENTION_SECONDS
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, ensure_topics


def default_path(settings: Settings) -> Path:
    """The checkpoint `billstream backfill --undelivered` uses too."""
    return checkpoints.default_path(settings.topic(STRIPE_EVENTS)).with_suffix(".undelivered.json")


def starting_point(settings: Settings, path: Path, now: float) -> Checkpoint:
    """The saved checkpoint of this topic and allowlist, else 30 days back."""
    topic, patterns = settings.topic(STRIPE_EVENTS), settings.stripe_webhook_allowed_events
    saved = checkpoints.load(path)
    if saved is not None and saved.topic == topic and saved.types == patterns:
        return saved
    return Checkpoint.fresh(topic, int(now) - EVENTS_RETENTION_SECONDS, patterns)


def _spool_undelivered(client: stripe.StripeClient, start: Checkpoint, spool: Spool) -> int:
    events = events_newest_first(client, start.created, start.types, undelivered=True)
    return spool_events(events, start, spool)


async def recover_undelivered(
    settings: Settings, client: stripe.StripeClient, path: Path | None = None
) -> int:
    """Publish every undelivered event not published yet; returns how many were published."""
    path = path or default_path(settings)
    start = starting_point(settings, path, time.time())
    with Spool() as spool:
        await asyncio.to_thread(_spool_undelivered, client, start, spool)
        if not len(spool):
            return 0
        await ensure_topics(settings)
        publisher = Publisher(settings)
        await publisher.start()
        try:
            await publish_spool(spool, publisher, start, path)
        finally:
            await publisher.stop()
        return len(spool)
