"""Dead-letter routing: a poison record goes to `stripe.events.dlq` unchanged, with its reason.

The stream never blocks on bad input; the DLQ keeps the original key, value and headers so a
fixed record can be replayed onto `stripe.events` as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from billstream.limits import REASONS as LIMIT_REASONS
from billstream.routing import HEADER_ERROR

Headers = list[tuple[str, bytes]]

# Reasons the worker itself assigns.
MISSING_KEY = "missing_key"
REDUCER_ERROR = "reducer_error"
# The reducer's InvalidEvent reasons (parsing.py, plans.py); the contract limits' come from limits.
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"

# Reasons the resolver (`billstream resolve`) assigns to stripe.thin-events records it cannot
# resolve: one per bounded Stripe failure of billstream/stripe_calls.py, plus its own two.
RESOLVER_REASONS: tuple[str, ...] = (
    "resolve_invalid",
    "resolve_nothing_to_fetch",
    "resolve_not_found",
    "resolve_rate_limited",
    "resolve_api_error",
    "resolve_connection",
    "resolve_invalid_request",
    "resolve_authentication",
    "resolve_conflict",
)
# Header naming the contract topic a dead letter is re-driven to (absent: stripe.events).
HEADER_REPLAY_TO = "replay-to"

# Every reason a dead letter can carry (its `error` header, billstream_dlq_total{reason}): the
# one list. The worker exports each at 0 from start-up, so an alert sees the first dead letter
# after a restart; tests/unit/processors/test_metric_labels.py fails on a reason missing here.
DLQ_REASONS: tuple[str, ...] = (
    MISSING_KEY,
    REDUCER_ERROR,
    NOT_JSON,
    NOT_OBJECT,
    MISSING_FIELD,
    BAD_TYPE,
    *LIMIT_REASONS,
    *RESOLVER_REASONS,
)


def header_items(headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Headers:
    """Record headers as (name, bytes) pairs, whichever shape the client handed over."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [
        (str(name), value if isinstance(value, bytes) else str(value).encode())
        for name, value in items
        if value is not None
    ]


def dlq_headers(
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]] | None, reason: str
) -> Headers:
    """The original headers with `error` set to `reason` (a previous `error` is replaced)."""
    kept = [(name, value) for name, value in header_items(headers) if name != HEADER_ERROR]
    return [*kept, (HEADER_ERROR, reason.encode())]


def header_value(headers: Headers, name: str) -> bytes | None:
    """The last value of header `name`, or None."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found
