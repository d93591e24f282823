"""`make bench-drift`: what a drift audit costs per 1,000 customers, against stripe-mock.

stripe-mock validates every request; its answers' pages are replaced by N subscriptions shaped
like Stripe's (with the extra fields a real object carries, ~3 KB each), one per customer. In
the same run, each --rounds times, alternating, best kept:
  bare      stripe-python walking the same pages (`subscriptions.list`, `starting_after`,
            `to_dict`): the floor any audit pays for the listing - baseline
  memory    the periodic audit's listing (billstream.drift.listing, position in memory)
  file      the one-off's resumable listing (spool + checkpoint written and fsynced per page)
  fold      drift events, the reducer's fold and the comparison with a served copy
Printed: Stripe calls and seconds per 1,000 customers, and each listing's ratio to bare. Reading
the api (`GET /accounts`, 500 a page) is one request per 500 accounts on top.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stripe

from billstream.drift.audit import differences, drift_event, expected_accounts
from billstream.drift.listing import Listing, list_remaining
from billstream.processors.config import ReducerConfig
from billstream.settings import Settings
from tests.support import factories as f
from tests.support.children import free_port
from tests.support.stripe_api import PagedSubscriptions, RecordingClient, client_for
from tests.support.stripe_fields import with_stripe_fields

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "stripe-mock.sh"
PLAN_MAP = f.PLAN_MAP


def subscriptions(count: int) -> list[dict[str, Any]]:
    prices = [f.pro_monthly(), f.business_monthly()]
    objects = []
    for n in range(count):
        sub = f.subscription(
            sub_id=f"sub_bench_{n:07d}", customer=f"cus_bench_{n:07d}", prices=[prices[n % 2]]
        )
        event = with_stripe_fields(f.event("customer.subscription.updated", sub, created=1))
        objects.append(event["data"]["object"])
    return objects


def bare(client: stripe.StripeClient) -> int:
    params: dict[str, Any] = {"status": "all", "limit": 100}
    listed = 0
    while True:
        page = client.v1.subscriptions.list(params)  # type: ignore[arg-type]
        items = [item.to_dict() for item in page.data]
        listed += len(items)
        if not page.has_more or not items:
            return listed
        params["starting_after"] = items[-1]["id"]


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    subprocess.run([str(SCRIPT), "up", str(port)], check=True, timeout=900)
    try:
        settings = Settings(
            stripe_api_key="sk_test_bench",
            stripe_api_base=f"http://127.0.0.1:{port}",
            billing_plan_map=PLAN_MAP,
        )
        objects = subscriptions(args.customers)
        transport = RecordingClient(rewrite=PagedSubscriptions(objects))
        client = client_for(settings, transport)
        config = ReducerConfig.from_settings(settings)
        best: dict[str, float] = {}
        calls = 0
        with tempfile.TemporaryDirectory(prefix="bench-drift-") as workdir:
            for _ in range(args.rounds):
                runs: dict[str, Callable[[], object]] = {
                    "bare": lambda: bare(client),
                    "memory": lambda: list_remaining(client, Listing()),
                    "file": lambda: list_remaining(client, Listing(Path(workdir) / "d.json")),
                }
                for name, run in runs.items():
                    before = len(transport.sent)
                    best[name] = min(best.get(name, float("inf")), timed(run))
                    calls = len(transport.sent) - before
                    (Path(workdir) / "d.json").unlink(missing_ok=True)
                    (Path(workdir) / "d.jsonl").unlink(missing_ok=True)

                def fold() -> None:
                    events = [drift_event(sub, 2) for sub in copy.deepcopy(objects)]
                    expected = expected_accounts(events, config)
                    assert differences(expected, expected) == []

                best["fold"] = min(best.get("fold", float("inf")), timed(fold))
    finally:
        subprocess.run([str(SCRIPT), "down", str(port)], check=False, timeout=60)
    per = 1000 / args.customers
    print(f"drift audit, {args.customers} customers, best of {args.rounds} (cpus {os.cpu_count()})")
    print(f"  Stripe calls per 1,000 customers: {calls * per:.0f} (100 a page)")
    print("  api requests per 1,000 accounts:  2 (GET /accounts, 500 a page)")
    for name in ("bare", "memory", "file", "fold"):
        ratio = "" if name == "fold" else f"  ({best[name] / best['bare']:.2f}x bare)"
        print(f"  {name:7s} {best[name] * per:6.3f} s per 1,000 customers{ratio}")


if __name__ == "__main__":
    main()
