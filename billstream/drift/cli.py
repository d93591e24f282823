"""`billstream drift [--heal]`: how far the served state is from Stripe's, and the repair.

Lists every subscription (`status=all`, paged, 429s backed off, resumable from
`var/drift/<topic>.json`) and the subscription schedules of those customers (a schedule's next
phase is a `pending_plan`), folds them into the accounts billstream would serve, compares with
what the api serves, and prints the differences by field. `--heal` publishes each drifting
customer's objects to `stripe.events` as synthetic events (`source: drift`, ids derived from
the objects), so the reducer repairs the state like any event; audit again once the worker has
folded them and it finds nothing. Connected accounts (`--stripe-account`) are listed the same
way with `Stripe-Account`, each from its own checkpoint. The periodic audit is
`billstream drift-audit`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

import stripe
from aiokafka.errors import KafkaError
from prometheus_client import generate_latest
from tqdm import tqdm

from billstream.drift import listing as listings
from billstream.drift.audit import by_field
from billstream.drift.auditor import Audit, account_listings, run_audit
from billstream.drift.metrics import RecoveryMetrics
from billstream.settings import Settings
from billstream.stripe_calls import AUTHENTICATION, StripeCallFailed
from billstream.stripe_client import StripeNotConfigured, describe_stripe_error, make_stripe_client
from billstream.topics import STRIPE_EVENTS
from billstream.verify.readers import SourceError

SHOWN = 20  # differences printed in full


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", default=None, help="the api (default DRIFT_API_URL)")
    parser.add_argument(
        "--heal", action="store_true", help="publish Stripe's objects of drifting customers"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resume file of the listing (default var/drift/<topic>.json)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the checkpoint and list everything again"
    )
    parser.add_argument(
        "--metrics", action="store_true", help="print the audit's metrics (Prometheus text)"
    )
    parser.add_argument(
        "--stripe-account",
        action="append",
        default=None,
        metavar="acct_…",
        help="also audit this connected account (Stripe-Account; repeatable; default "
        "DRIFT_STRIPE_ACCOUNTS); each listing resumes from its own checkpoint",
    )


def report(result: Audit) -> None:
    resumed = " (listing resumed)" if result.resumed else ""
    print(
        f"billstream drift: {result.customers} customers checked against {result.subscriptions} "
        f"Stripe subscriptions in {result.seconds:.1f} s{resumed}; {len(result.drifting)} drift"
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


def connected(account: str) -> str:
    """A `--stripe-account` value, checked as the setting is."""
    if not re.fullmatch(r"acct_[A-Za-z0-9]+", account):
        raise ValueError(f"--stripe-account {account!r} is not a Stripe account id (acct_…)")
    return account


def _fail(message: str, status: int = 1) -> int:
    print(f"billstream drift: {message}", file=sys.stderr)
    return status


def run(settings: Settings, args: argparse.Namespace) -> int:
    api_url = args.api_url or settings.drift_api()
    path = args.checkpoint or listings.default_path(settings.topic(STRIPE_EVENTS))
    try:
        accounts = [connected(a) for a in args.stripe_account or settings.drift_stripe_accounts]
    except ValueError as error:
        return _fail(str(error), 2)
    if args.fresh:
        for account in (None, *accounts):
            listings.discard(listings.account_path(path, account))
    try:
        client = make_stripe_client(settings, max_network_retries=0)  # stripe_calls retries
        by_account = account_listings(accounts, path)
    except (StripeNotConfigured, ValueError) as error:
        return _fail(str(error), 2)
    for account, listing in by_account.items():
        if listing.resumed:
            of = "" if account is None else f" of {account}"
            listed = listing.position.listed
            print(f"billstream drift: resuming the listing{of} after {listed} subscriptions")
    try:
        with tqdm(desc="listing", unit="subscription", disable=None) as bar:
            result = asyncio.run(
                run_audit(settings, client, api_url, by_account, args.heal, on_page=bar.update)
            )
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        return _fail(describe_stripe_error(error) + " (check STRIPE_API_KEY)", 2)
    except stripe.StripeError as error:
        return _fail(f"{describe_stripe_error(error)}; rerun to resume ({path})")
    except StripeCallFailed as error:
        code = 2 if error.reason == AUTHENTICATION else 1
        hint = " (check STRIPE_API_KEY)" if code == 2 else f"; rerun to resume ({path})"
        return _fail(f"{error}{hint}", code)
    except (SourceError, KafkaError) as error:
        return _fail(f"{error}; rerun to resume ({path})")
    except KeyboardInterrupt:
        return _fail(f"interrupted; rerun the same command to resume ({path})", 130)
    report(result)
    if args.metrics:
        metrics = RecoveryMetrics.create()
        metrics.observe_audit(result)
        sys.stdout.write(generate_latest(metrics.registry).decode())
    return 0
