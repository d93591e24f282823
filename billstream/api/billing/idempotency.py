"""Idempotency keys for every Stripe create/update, and replay of a client's retried request.

The key is the client's `Idempotency-Key` header when given, else derived from the request
(route, path ids, canonical body, plus whatever state the action depends on), so the same
click retried sends Stripe the same key and Stripe replays its first answer for 24 hours
(docs.stripe.com/api/idempotent_requests). With a client key the api also keeps the first
answer itself (`ReplayCache`): a retry is answered without calling Stripe again, and the same
key with another body is refused (409), as Stripe would.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from billstream.api.billing.errors import BillingError, bad_field, conflict

HEADER = "Idempotency-Key"
# Stripe accepts keys up to 255 characters; a per-call suffix (":pay") must still fit.
MAX_CLIENT_KEY = 200
CLIENT_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
REPLAY_TTL_SECONDS = 24 * 3600  # Stripe's own window
REPLAY_CAPACITY = 10_000


def client_key(headers: Mapping[str, str]) -> str | None:
    """The caller's key, validated; None when the header is absent."""
    value = headers.get(HEADER)
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_CLIENT_KEY or not CLIENT_KEY.fullmatch(value):
        raise bad_field(HEADER, f"1-{MAX_CLIENT_KEY} printable ASCII characters without spaces")
    return value


def fingerprint(route: str, params: Mapping[str, str], body: Mapping[str, Any]) -> str:
    """A stable digest of one request: the same request always gives the same digest."""
    canonical = orjson.dumps(
        {"route": route, "params": dict(params), "body": dict(body)},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


def derived_key(action: str, request_digest: str, *state: str | None) -> str:
    """`billstream-<action>-<digest>`: `state` adds what the outcome depends on beyond the
    request (a subscription's current price), so a later identical request after the state
    changed is a new request, not a replay."""
    digest = hashlib.sha256("\x1f".join([request_digest, *(s or "" for s in state)]).encode())
    return f"billstream-{action}-{digest.hexdigest()[:40]}"


@dataclass(frozen=True)
class Replay:
    digest: str
    status: int
    body: bytes
    stored_at: float


class ReplayCache:
    """First answers (2xx only) by client key, for 24 h, at most REPLAY_CAPACITY (LRU).

    Per process: across replicas Stripe's own replay of the same key is what holds.
    """

    def __init__(self, capacity: int = REPLAY_CAPACITY, ttl: float = REPLAY_TTL_SECONDS) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._items: OrderedDict[str, Replay] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, digest: str) -> Replay | None:
        """The stored answer; BillingError 409 if the key came with a different request."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if time.monotonic() - found.stored_at > self.ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
        if found.digest != digest:
            raise conflict(
                "idempotency_conflict", f"{HEADER} was already used with a different request"
            )
        return found

    def put(self, key: str, digest: str, status: int, body: bytes) -> None:
        with self._lock:
            self._items[key] = Replay(digest, status, body, time.monotonic())
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


def window(seconds: int, now: float | None = None) -> str:
    """The current `seconds`-long time window, for keys whose replay must not outlive it."""
    return str(int((time.time() if now is None else now) // seconds))


def scoped(key: str, call: str | None = None) -> str:
    """The key of one Stripe call of an action: actions with two mutating calls suffix the
    second, so each call has its own key and both replay."""
    return key if call is None else f"{key}:{call}"


__all__ = [
    "HEADER",
    "BillingError",
    "ReplayCache",
    "client_key",
    "derived_key",
    "fingerprint",
    "scoped",
    "window",
]
