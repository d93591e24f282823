"""What Stripe says each customer's account is, and where billstream serves something else.

Pure: Stripe's subscription objects (and active subscription schedules, whose next phase is a
`pending_plan`) are folded by the reducer itself, as synthetic `customer.subscription.updated`
and `subscription_schedule.updated` events, so "expected" means exactly what billstream would
serve had every event arrived; the comparison is by field, for the fields a drift can hurt.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from billstream.processors.config import ReducerConfig
from billstream.processors.reducer import CustomerState, apply
from billstream.routing import event_key

# The fields whose drift the audit reports (billstream_drift_accounts{field}).
FIELDS = ("plan", "subscription_id", "subscription_status", "cancel_at_period_end", "pending_plan")


@dataclass(frozen=True)
class Difference:
    customer_id: str  # the account key: `acct_…/cus_…` for a connected account's customer
    field: str
    stripe: Any  # what billstream would serve from Stripe's objects
    served: Any  # what billstream serves (None: the customer is not served at all)


def _plain(value: object) -> object:
    # stripe-python turns Stripe's decimal strings (`unit_amount_decimal`) into Decimal.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def encode(obj: Mapping[str, Any], sort_keys: bool = False) -> bytes:
    """JSON of a listed Stripe object, its decimals as the strings Stripe sent."""
    return orjson.dumps(obj, default=_plain, option=orjson.OPT_SORT_KEYS if sort_keys else 0)


SCHEDULE_UPDATED = "subscription_schedule.updated"


def drift_event(
    subscription: Mapping[str, Any],
    now: int,
    event_type: str = "customer.subscription.updated",
    stripe_account: str | None = None,
) -> dict[str, Any]:
    """The object (a subscription, or a schedule with SCHEDULE_UPDATED) as an event of `now`,
    with an id derived from the object itself; a connected account's names it in `account`,
    as Connect events do, so it is keyed and folded as that account's.

    The same object yields the same id, so healing twice is a duplicate; `created` is the time of
    the snapshot, newer than any event that led to it, so the reducer applies it.
    """
    digest = hashlib.sha256(encode(subscription, sort_keys=True)).hexdigest()
    event: dict[str, Any] = {
        "id": f"evt_drift_{digest[:24]}",
        "object": "event",
        "type": event_type,
        "created": now,
        "data": {"object": dict(subscription)},
        "livemode": bool(subscription.get("livemode", False)),
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
    }
    if stripe_account is not None:
        event["account"] = stripe_account
    return event


def expected_accounts(
    events: Iterable[Mapping[str, Any]], config: ReducerConfig
) -> dict[str, dict[str, Any]]:
    """The account each billing account's subscription snapshots fold to, by account key
    (the customer id; `acct_…/cus_…` for a connected account's customer)."""
    states: dict[str, CustomerState] = {}
    for event in events:
        key = event_key(event, config.platform_account)
        states[key], _ = apply(states.get(key), event, config)
    views = {customer: state.account_view() for customer, state in states.items()}
    return {customer: view for customer, view in views.items() if view is not None}


def differences(
    expected: Mapping[str, Mapping[str, Any]], served: Mapping[str, Mapping[str, Any]]
) -> list[Difference]:
    """Every field of FIELDS where the served account is not what Stripe's objects give."""
    found = []
    for customer, account in sorted(expected.items()):
        actual = served.get(customer)
        for name in FIELDS:
            have = None if actual is None else actual.get(name)
            if actual is None or have != account.get(name):
                found.append(Difference(customer, name, account.get(name), have))
    return found


def by_field(found: Iterable[Difference]) -> Counter[str]:
    """Accounts drifting, per field."""
    return Counter(difference.field for difference in found)
