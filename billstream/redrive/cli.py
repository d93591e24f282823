"""`billstream dlq list` and `billstream dlq replay`: what died and why, and send it back.

Runbook (docs/stripe-api.md, "Dead-letter re-drive"): read `dlq list`, fix the bug, deploy,
then `dlq replay [--reason R] [--event-id ID] [--since T] [--dry-run]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from billstream.backfill.since import parse_since
from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.redrive import replay as replays
from billstream.redrive.letters import DeadLetter, Selection, Summary
from billstream.settings import Settings
from billstream.topics import STRIPE_EVENTS, STRIPE_EVENTS_DLQ
from billstream.verify.readers import SourceError, TopicRead, read_topic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="counts by reason and event type; never payloads")
    listing.add_argument("--json", action="store_true", help="print the summary as JSON")
    again = actions.add_parser("replay", help="republish dead letters to stripe.events")
    again.add_argument("--reason", help="only dead letters with this reason")
    again.add_argument("--event-id", help="only this event")
    again.add_argument("--since", help="only those dead-lettered since (3d, ISO 8601, unix s)")
    again.add_argument("--dry-run", action="store_true", help="count what would be replayed")
    again.add_argument("--checkpoint", type=Path, help="resume file (default var/dlq-replay/)")
    again.add_argument("--fresh", action="store_true", help="ignore a saved checkpoint")
    again.add_argument("--no-progress", action="store_true", help="no progress bar")


async def dead_letters(settings: Settings) -> AsyncIterator[DeadLetter]:
    """The DLQ from its beginning to its end at start, in partition order."""
    topic = settings.topic(STRIPE_EVENTS_DLQ)
    async for record in read_topic(settings, topic, TopicRead(topic)):
        yield DeadLetter.of(record)


class Republisher:
    """acks=all, idempotent: `publish` returns once every record of the batch is durable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(STRIPE_EVENTS)
        self.producer = AIOKafkaProducer(
            **aiokafka_options(settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=record_bytes(settings.stripe_webhook_max_body),
        )

    async def publish(self, letters: list[DeadLetter]) -> None:
        futures = [
            await self.producer.send(
                self.settings.topic(replays.replay_topic(letter)),
                value=letter.value,
                key=letter.key,
                headers=replays.replay_headers(letter),
            )
            for letter in letters
        ]
        await asyncio.gather(*futures)


async def _list(settings: Settings, as_json: bool) -> int:
    summary = Summary()
    async for letter in dead_letters(settings):
        summary.add(letter)
    if as_json:
        print(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{summary.total} dead letters in {settings.topic(STRIPE_EVENTS_DLQ)}")
    if summary.total:
        print(f"oldest {_when(summary.oldest_ms)}, newest {_when(summary.newest_ms)}")
    for entry in summary.as_dict()["reasons"]:
        types = ", ".join(f"{t} {n}" for t, n in entry["types"].items())
        print(f"  {entry['reason']}: {entry['count']} ({types})")
        print(f"    e.g. {' '.join(entry['event_ids'])}")
    return 0


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    since = None if args.since is None else parse_since(args.since, time.time()) * 1000
    selection = Selection(args.reason, args.event_id, since)
    topic = settings.topic(STRIPE_EVENTS_DLQ)
    path = args.checkpoint or replays.DEFAULT_CHECKPOINT_DIR / f"{topic}.json"
    start = replays.Checkpoint(topic, selection.key())
    if not args.fresh and not args.dry_run:
        start = replays.load(path, topic, selection)
    before = start.replayed  # a resumed run counts on from the checkpoint
    progress = tqdm(desc="dead letters", unit=" records", disable=args.no_progress, file=sys.stderr)
    sink = None if args.dry_run else Republisher(settings)
    if sink is not None:
        await sink.producer.start()
    try:
        done = await replays.replay(
            dead_letters(settings), selection, sink, start, path, lambda _: progress.update()
        )
    finally:
        progress.close()
        if sink is not None:
            await sink.producer.stop()
    verb = "would replay" if args.dry_run else "replayed"
    target = settings.topic(STRIPE_EVENTS)
    print(f"{verb} {done.replayed - before} dead letters ({selection.key()}) to {target}")
    return 0


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            return asyncio.run(_list(settings, args.json))
        return asyncio.run(_replay(settings, args))
    except (SourceError, ValueError) as error:
        print(f"billstream: {error}", file=sys.stderr)
        return 1
