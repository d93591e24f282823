"""Connect traffic: some customers' stories told in connected accounts, as a Connect webhook
endpoint receives them (each event names its `account`; docs.stripe.com/connect/webhooks).

Each customer belongs to the platform or to one of `count` connected accounts, by a hash of
its id, so a seed gives the same split every run; the account's deliveries go to the Connect
endpoint with its own secret. Bad traffic (forged signatures, broken payloads) stays on the
platform endpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator

import orjson

from billstream.simulate.traffic import Delivery


def connected_accounts(count: int) -> tuple[str, ...]:
    """The simulated connected accounts' ids."""
    return tuple(f"acct_simulated{index}" for index in range(1, count + 1))


def account_of(customer_id: str, accounts: tuple[str, ...]) -> str | None:
    """The account a customer's story is told in: None (the platform) or one of `accounts`."""
    share = int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:4], "big")
    index = share % (len(accounts) + 1)
    return None if index == 0 else accounts[index - 1]


def as_connect(delivery: Delivery, account: str) -> Delivery:
    """The delivery as the Connect endpoint receives it: the event names `account`."""
    event = orjson.loads(delivery.body)
    event["account"] = account
    body = orjson.dumps(event, option=orjson.OPT_INDENT_2)
    return dataclasses.replace(delivery, body=body, destination="connect")


def for_accounts(deliveries: Iterable[Delivery], count: int) -> Iterator[Delivery]:
    """The platform's deliveries, with the customers of `count` connected accounts moved to
    the Connect endpoint (count 0: unchanged)."""
    accounts = connected_accounts(count)
    for delivery in deliveries:
        is_event = delivery.kind in ("event", "duplicate") and delivery.customer_id
        account = account_of(delivery.customer_id or "", accounts) if is_event else None
        yield delivery if account is None else as_connect(delivery, account)
