"""`billstream backfill --since <timestamp|duration> [--types ...]`: replay missed webhooks."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import stripe
from aiokafka.errors import KafkaError
from tqdm import tqdm

from billstream.backfill import checkpoint as checkpoints
from billstream.backfill.checkpoint import Checkpoint
from billstream.backfill.lister import events_newest_first, narrow_patterns
from billstream.backfill.publisher import Publisher, Spool
from billstream.backfill.runner import Plan, publish_spool, spool_events, starting_point
from billstream.backfill.since import EVENTS_RETENTION_SECONDS, parse_since
from billstream.settings import Settings
from billstream.stripe_calls import AUTHENTICATION, StripeCallFailed
from billstream.stripe_client import (
    StripeNotConfigured,
    api_base,
    describe_stripe_error,
    make_stripe_client,
)
from billstream.topics import STRIPE_EVENTS, ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        required=True,
        help="unix seconds, ISO 8601 (2026-01-01T00:00:00Z) or a duration back from now (36h, 3d)",
    )
    parser.add_argument(
        "--types",
        default="",
        help="comma-separated types or prefix.* patterns within STRIPE_WEBHOOK_ALLOWED_EVENTS "
        "(default: the whole allowlist)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resume file (default var/backfill/<topic>.json)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the checkpoint and list the whole range again"
    )
    parser.add_argument(
        "--page-size", type=int, default=100, choices=range(1, 101), metavar="1-100"
    )
    parser.add_argument(
        "--stripe-account",
        action="append",
        default=None,
        metavar="acct_…",
        help="also list this connected account's events (Stripe-Account; repeatable; "
        "default BACKFILL_STRIPE_ACCOUNTS); each has its own checkpoint",
    )
    parser.add_argument(
        "--undelivered",
        action="store_true",
        help="only events Stripe has not delivered successfully to every endpoint "
        "(delivery_success=false); checkpoint var/backfill/<topic>.undelivered.json",
    )


def _fail(message: str, status: int = 1) -> int:
    print(f"billstream backfill: {message}", file=sys.stderr)
    return status


def _plan(settings: Settings, args: argparse.Namespace, account: str | None = None) -> Plan:
    since = parse_since(args.since, time.time())
    requested = tuple(t.strip() for t in str(args.types).split(",") if t.strip())
    patterns = narrow_patterns(settings.stripe_webhook_allowed_events, requested)
    default = checkpoints.default_path(settings.topic(STRIPE_EVENTS))
    if args.undelivered:  # its own range: never resumes (or is resumed by) a full backfill
        default = default.with_suffix(".undelivered.json")
    if account is not None:  # each account's events are their own range
        default = default.with_suffix(f".{account}.json")
    path = args.checkpoint or default
    if account is not None and args.checkpoint is not None:
        path = args.checkpoint.with_suffix(f".{account}.json")
    return Plan(since=since, patterns=patterns, checkpoint_path=path, fresh=args.fresh)


async def _publish(settings: Settings, plan: Plan, spool: Spool, start: Checkpoint) -> Checkpoint:
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    try:
        with tqdm(total=len(spool), desc="publishing", unit="event", disable=None) as bar:
            return await publish_spool(
                spool, publisher, start, plan.checkpoint_path, on_batch=bar.update
            )
    finally:
        await publisher.stop()


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The platform's events, then each connected account's (docs/connect.md)."""
    accounts = args.stripe_account or list(settings.backfill_stripe_accounts)
    for account in accounts:
        if not account.startswith("acct_"):
            return _fail(f"--stripe-account {account!r}: not a Stripe account id (acct_…)", 2)
    status = _run_one(settings, args, None)
    for account in accounts:
        if status != 0:
            break
        status = _run_one(settings, args, account)
    return status


def _run_one(settings: Settings, args: argparse.Namespace, account: str | None) -> int:
    try:
        plan = _plan(settings, args, account)
        client = make_stripe_client(settings, max_network_retries=0)  # stripe_calls retries
        start, resumed = starting_point(plan, settings.topic(STRIPE_EVENTS))
    except (ValueError, StripeNotConfigured) as error:
        return _fail(str(error), 2)
    if time.time() - plan.since > EVENTS_RETENTION_SECONDS:
        print("billstream backfill: warning: Stripe keeps events for 30 days only", file=sys.stderr)
    if resumed:
        print(f"billstream backfill: resuming after {start.published} events ({start.created})")
    try:
        with Spool() as spool:
            with tqdm(desc="listing", unit="event", disable=None) as bar:
                events = events_newest_first(
                    client,
                    start.created,
                    plan.patterns,
                    page_size=args.page_size,
                    undelivered=args.undelivered,
                    stripe_account=account,
                )
                listed = spool_events(events, start, spool, on_event=bar.update)
            published = len(spool)
            final = asyncio.run(_publish(settings, plan, spool, start))
    except stripe.AuthenticationError as error:
        return _fail(describe_stripe_error(error) + " (check STRIPE_API_KEY)", 2)
    except StripeCallFailed as error:
        if error.reason == AUTHENTICATION:
            return _fail(f"{error} (check STRIPE_API_KEY)", 2)
        return _fail(f"{api_base(settings)}: {error}; rerun to resume")
    except stripe.APIConnectionError as error:
        return _fail(f"{api_base(settings)}: {describe_stripe_error(error)}")
    except stripe.StripeError as error:
        return _fail(describe_stripe_error(error))
    except KafkaError as error:
        return _fail(f"Kafka at {settings.kafka_bootstrap_servers}: {error!r}; rerun to resume")
    except KeyboardInterrupt:
        return _fail(f"interrupted; rerun the same command to resume ({plan.checkpoint_path})", 130)
    what = "undelivered events recovered" if args.undelivered else "published"
    whose = "" if account is None else f"{account}: "
    print(
        f"billstream backfill: {whose}listed {listed}, {what} {published} to "
        f"{settings.topic(STRIPE_EVENTS)}; checkpoint {plan.checkpoint_path} "
        f"(up to created {final.created})"
    )
    return 0
