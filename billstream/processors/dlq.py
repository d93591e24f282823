"""Dead-letter routing: a poison record goes to `stripe.events.dlq` unchanged, with its reason.

The stream never blocks on bad input; the DLQ keeps the original key, value and headers so a
fixed record can be replayed onto `stripe.events` as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from billstream.routing import HEADER_ERROR

Headers = list[tuple[str, bytes]]

# Reasons the worker itself assigns; the reducer's InvalidEvent reasons are added to these.
MISSING_KEY = "missing_key"
REDUCER_ERROR = "reducer_error"


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
