"""`billstream simulate`: realistic signed Stripe Billing traffic against a running ingest.

Same `--seed` and `--start`, same deliveries (ids, bodies, order); sending the same seed twice
therefore replays the same events, which the worker must treat as duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path

from tqdm import tqdm

from billstream.settings import Settings
from billstream.simulate import catalog, connect, events, thin
from billstream.simulate.expected import fold
from billstream.simulate.sender import Sender, SendOptions
from billstream.simulate.summary import render, summarize
from billstream.simulate.traffic import Outcome, TrafficConfig, traffic

FAILED = frozenset({"unavailable", "error"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--url", help="webhook endpoint (default: http://127.0.0.1:$INGEST_PORT/webhooks/stripe)")
    add("--rate", type=float, default=50.0, help="deliveries per second (default 50)")
    add("--duration", type=float, default=60.0, help="seconds to send for (default 60)")
    add("--seed", type=int, help="random seed (default: a new one, printed)")
    add("--start", type=int, help="virtual 'now' of the stories, epoch seconds (default: now)")
    add("--customers", type=int, default=100, help="customers in flight at once (default 100)")
    add("--concurrency", type=int, default=16, help="parallel requests (default 16)")
    add("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    add("--retries", type=int, default=4, help="retries after a 5xx or network error")
    add("--duplicates", type=float, default=0.03, help="share of events delivered twice")
    add("--out-of-order", type=float, default=0.02, help="share of events delivered late")
    add("--noise", type=float, default=0.01, help="share of bad requests (signature, payload)")
    add(
        "--api-version",
        choices=events.API_VERSIONS,
        default=events.NEWEST_API,
        help=f"payload shape of this Stripe API version (default {events.NEWEST_API}, the newest)",
    )
    add(
        "--destination",
        choices=thin.DESTINATIONS,
        default="snapshot",
        help="event destination to play: snapshot webhooks, thin notifications (resolved by "
        "`billstream resolve` against STRIPE_API_BASE), or both as during a migration",
    )
    add(
        "--connect-accounts",
        type=int,
        default=0,
        metavar="N",
        help="tell some customers' stories in N connected accounts, delivered to the Connect "
        "endpoint (/webhooks/stripe/connect) with STRIPE_CONNECT_WEBHOOK_SECRETS (default 0)",
    )
    add("--no-progress", action="store_true", help="no progress bar")
    add("--summary-json", type=Path, help="also write the summary as JSON to this file")


def run(settings: Settings, args: argparse.Namespace) -> int:
    secrets_in_use = settings.webhook_secret_values()
    if not secrets_in_use:
        print("billstream simulate: set STRIPE_WEBHOOK_SECRETS to ingest's secret", file=sys.stderr)
        return 2
    connect_secrets = settings.connect_webhook_secret_values()
    if args.connect_accounts < 0:
        print("billstream simulate: --connect-accounts must be 0 or more", file=sys.stderr)
        return 2
    if args.connect_accounts and not connect_secrets:
        print(
            "billstream simulate: --connect-accounts needs STRIPE_CONNECT_WEBHOOK_SECRETS "
            "(the Connect endpoint's secret)",
            file=sys.stderr,
        )
        return 2
    if args.connect_accounts and args.destination != "snapshot":
        print("billstream simulate: --connect-accounts plays snapshot events only", file=sys.stderr)
        return 2
    unmapped = catalog.unmapped_prices(dict(settings.billing_plan_map))
    if unmapped:
        print(
            f"billstream simulate: BILLING_PLAN_MAP does not map {', '.join(unmapped)}; "
            f"the pipeline will grant the default plan. Use "
            f"BILLING_PLAN_MAP={catalog.SIMULATOR_PLAN_MAP}",
            file=sys.stderr,
        )
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    start = args.start if args.start is not None else int(time.time())
    config = TrafficConfig(
        seed=seed, start=start, api_version=args.api_version, customers=args.customers,
        duplicate_ratio=args.duplicates, out_of_order_ratio=args.out_of_order,
        noise_ratio=args.noise,
    )  # fmt: skip
    options = SendOptions(
        url=args.url or f"http://127.0.0.1:{settings.ingest_port}/webhooks/stripe",
        secret=secrets_in_use[0], rate=args.rate, duration=args.duration,
        concurrency=args.concurrency, timeout=args.timeout, max_retries=args.retries,
        connect_secret=connect_secrets[0] if connect_secrets else None,
    )  # fmt: skip
    total = max(1, int(args.rate * args.duration))
    bar = tqdm(total=total, unit="req", disable=True if args.no_progress else None)

    def progress(outcome: Outcome) -> None:
        bar.update()
        if outcome.status in FAILED:
            bar.set_postfix_str(f"last failure: {outcome.status}", refresh=False)

    stories = connect.for_accounts(traffic(config), args.connect_accounts)
    deliveries = thin.for_destination(stories, args.destination)
    report = asyncio.run(Sender(options, progress).run(deliveries, total))
    bar.close()
    summary = summarize(report, fold(report.outcomes, settings), seed, start, args.api_version)
    print(render(summary))
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    counts = report.counts()
    return 1 if not counts.get("queued") or any(counts.get(s) for s in FAILED) else 0
