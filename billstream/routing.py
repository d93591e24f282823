"""How a Stripe event becomes a Kafka record: its key and headers (DESIGN.md, "Topics").

Shared by ingest and backfill so both put every event of one customer on one partition, in order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

HEADER_EVENT_ID = "stripe-event-id"
HEADER_EVENT_TYPE = "stripe-event-type"
HEADER_RECEIVED_AT = "received-at"
HEADER_ACCOUNT = "stripe-account"
HEADER_SOURCE = "source"
HEADER_ERROR = "error"

# Between a connected account's id and the customer id in an account key (Stripe ids hold no '/').
ACCOUNT_SEPARATOR = "/"
_ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9]{1,240}")


def account_key(customer_key: str, account: Any, platform: str | None = None) -> str:
    """The key of a billing account: (Stripe account, customer), spelled so that single-account
    deployments keep theirs (docs/DESIGN.md, "Stripe accounts").

    The platform's own events have no `account` (or the platform's id, STRIPE_ACCOUNT_ID): their
    key is the customer id alone, as before Connect. A connected account's is `acct_…/cus_…`.
    """
    connected = connected_account(account, platform)
    return customer_key if connected is None else f"{connected}{ACCOUNT_SEPARATOR}{customer_key}"


def connected_account(account: Any, platform: str | None = None) -> str | None:
    """The event's connected account id, or None for the platform (no account, or its own).

    Only a well-formed `acct_…` id is an account: anything else could not be told apart from
    a customer id in a key (`split_account_key`), so it routes as the platform's.
    """
    if not isinstance(account, str) or account == platform or not _ACCOUNT_ID.fullmatch(account):
        return None
    return account


def split_account_key(key: str) -> tuple[str | None, str]:
    """(connected account or None, customer id) of an `account_key`."""
    account, separator, customer = key.partition(ACCOUNT_SEPARATOR)
    if separator and _ACCOUNT_ID.fullmatch(account):
        return account, customer
    return None, key


def event_key(event: Mapping[str, Any], platform: str | None = None) -> str:
    """The Kafka key of an event: `account_key` of its `routing_key` and its `account`."""
    return account_key(routing_key(event), event.get("account"), platform)


def routing_key(event: Mapping[str, Any]) -> str:
    """The customer id of the event's object; the object id when it has no customer.

    The customer is `customer` (an id or the expanded object), else `customer_account`: the
    Accounts v2 account representing the customer (docs.stripe.com/accounts-v2/use-accounts-as-
    customers), which Stripe's objects carry beside `customer` and which the invoice's
    nullable `customer` may leave alone.
    """
    obj = event.get("data", {}).get("object", {})
    event_id = str(event.get("id", ""))
    if not isinstance(obj, Mapping):
        return event_id
    return key_for(
        event_id,
        str(event.get("type", "")),
        obj.get("object"),
        obj.get("id"),
        obj.get("customer"),
        obj.get("customer_account"),
    )


def key_for(
    event_id: str,
    event_type: str,
    kind: Any,
    object_id: Any,
    customer: Any,
    customer_account: Any = None,
) -> str:
    """The rule on the few fields it reads: ingest calls it on its decoded structs directly."""
    if event_type.startswith("customer.") and kind == "customer":
        return _text(object_id) or event_id
    if isinstance(customer, Mapping):  # expanded customer object
        customer = customer.get("id")
    return _text(customer) or _text(customer_account) or _text(object_id) or event_id


def _text(value: Any) -> str | None:
    """Only strings are ids: a number's text depends on the JSON parser (msgspec keeps 2**64 an
    int, orjson makes it a float), so ingest and the worker would key the event differently."""
    return value if isinstance(value, str) and value else None


def record_headers(
    event: Mapping[str, Any], received_at_ms: int, source: str | None = None
) -> list[tuple[str, bytes]]:
    """Kafka headers of the contract, plus `source` (e.g. `backfill`) when given."""
    return headers_for(
        str(event.get("id", "")),
        str(event.get("type", "")),
        received_at_ms,
        event.get("account"),
        source,
    )


def headers_for(
    event_id: str, event_type: str, received_at_ms: int, account: Any, source: str | None = None
) -> list[tuple[str, bytes]]:
    """The headers from the fields they carry (ingest calls it on its decoded structs)."""
    headers = [
        (HEADER_EVENT_ID, event_id.encode()),
        (HEADER_EVENT_TYPE, event_type.encode()),
        (HEADER_RECEIVED_AT, b"%d" % received_at_ms),
    ]
    if isinstance(account, str) and account:
        headers.append((HEADER_ACCOUNT, account.encode()))
    if source:
        headers.append((HEADER_SOURCE, source.encode()))
    return headers
