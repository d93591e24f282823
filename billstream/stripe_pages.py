"""Fetching one page of a Stripe list endpoint: the one place every listing's call goes through.

Backfill (`/v1/events`) and the drift audit (`/v1/subscriptions`) walk their lists page by page
with `starting_after` rather than `auto_paging_iter`, so a rate-limited page is retried on its
own and a walk can resume from its cursor. Rate limiting and retries live here, once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stripe

ListCall = Callable[[Mapping[str, Any]], Any]  # e.g. client.v1.subscriptions.list


@dataclass(frozen=True)
class Backoff:
    """Exponential pause with jitter for 429s: Stripe's rate limit is per second."""

    attempts: int = 8
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2**attempt) * (0.5 + random.random() / 2))  # noqa: S311


def fetch_page(
    list_call: ListCall,
    params: Mapping[str, Any],
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """One page (a stripe ListObject); rate-limited requests are retried after a pause."""
    backoff = backoff or Backoff()
    for attempt in range(backoff.attempts):
        try:
            return list_call(dict(params))
        except stripe.RateLimitError:
            if attempt == backoff.attempts - 1:
                raise
            sleep(backoff.delay(attempt))
    raise AssertionError("unreachable")
