"""`make bench-state`: table value bytes per customer, this branch's state vs the state before it.

A year of monthly billing per customer (a subscription update, sometimes a failed payment,
then the payment, every month; a few same-second update pairs) is folded by the reducer, and
each customer's table value is encoded:
  before  closed invoices forgotten with the de-duplication horizon (7 days) and subscriptions
          without their same-second tie facts: the value schema 1 stored
  after   closed invoices leave a tombstone for CLOSED_INVOICE_RETENTION_SECONDS (35 days),
          subscriptions keep their tie facts
Bytes are counted, not timed, so the ratio does not depend on the machine. Results: printed,
and bench/results/state_size.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import orjson

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import apply
from billstream.tables.codec import encode_customer, encode_state
from billstream.tables.state import CustomerState
from tests.support import factories as f

DAY = 86400
TIE_FACTS = ("applied_ids", "prior", "first", "refetched")
RESULTS = Path(__file__).parent / "results" / "state_size.json"


def customer_year(rng: random.Random, customer: str) -> list[dict[str, Any]]:
    """One customer's year of monthly billing, in event-time order."""
    sub, t = f"sub_{customer[4:]}", 1_700_000_000 + rng.randint(0, 30 * DAY)
    common: dict[str, Any] = {"customer": customer, "sub_id": sub, "prices": [f.pro_monthly()]}
    events = [f.subscription_event("customer.subscription.created", created=t, **common)]
    for month in range(12):
        t += 30 * DAY
        invoice = {"customer": customer, "subscription_id": sub, "invoice_id": f"in_{sub}_{month}"}
        events.append(f.subscription_event(created=t, **common))
        if rng.random() < 0.2:  # the same second again: a tie
            events.append(f.subscription_event(created=t, cancel_at_period_end=True, **common))
        if rng.random() < 0.3:
            events.append(f.invoice_event("invoice.payment_failed", created=t + 60, **invoice))
        events.append(f.invoice_event("invoice.paid", created=t + DAY, **invoice))
    return events


def fold(events: list[dict[str, Any]], config: ReducerConfig) -> CustomerState:
    state: CustomerState | None = None
    for event in events:
        state, _ = apply(state, event, config)
    assert state is not None
    return state


def schema_1_bytes(state: CustomerState) -> int:
    """The value as schema 1 encoded it: subscriptions without the tie facts, no tombstones."""
    data = state.to_dict()
    data["schema"] = 1
    del data["closed_invoices"]
    for sub in data["subscriptions"]:
        for name in TIE_FACTS:
            del sub[name]
    return len(encode_state(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(7)
    after_config = ReducerConfig(plan_map={"pro_monthly": "PRO"}, plan_order=("FREE", "PRO"))
    before_config = dataclasses.replace(
        after_config, closed_invoice_retention_seconds=after_config.dedup_retention_seconds
    )
    before = after = 0
    for n in range(args.customers):
        events = customer_year(rng, f"cus_s{n:06d}")
        before += schema_1_bytes(fold(events, before_config))
        after += len(encode_customer(fold(events, after_config)))
    result = {
        "customers": args.customers,
        "bytes_per_customer_before": round(before / args.customers),
        "bytes_per_customer_after": round(after / args.customers),
        "ratio_after_to_before": round(after / before, 3),
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
