"""Fetching one page of a Stripe list endpoint: the one place every listing's call goes through.

Backfill (`/v1/events`) and the drift audit (`/v1/subscriptions`) walk their lists page by page
with `starting_after` rather than `auto_paging_iter`, so a failed page is retried on its own and
a walk can resume from its cursor. The rate limit and retries are billstream/stripe_calls.py's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from billstream.stripe_calls import RetryPolicy, StripeCalls

ListCall = Callable[[Mapping[str, Any]], Any]  # e.g. client.v1.subscriptions.list

# The listings' name for the retry policy (attempts, base, cap).
Backoff = RetryPolicy


def in_account(list_call: Callable[..., Any], stripe_account: str | None) -> ListCall:
    """`list_call` in a connected account (the `Stripe-Account` header,
    docs.stripe.com/connect/authentication), or the platform's own with None."""
    if stripe_account is None:
        return list_call
    options: Any = {"stripe_account": stripe_account}
    return functools.partial(list_call, options=options)


def fetch_page(
    list_call: ListCall,
    params: Mapping[str, Any],
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    calls: StripeCalls | None = None,
) -> Any:
    """One page (a stripe ListObject), rate-limited and retried; StripeCallFailed when it cannot."""
    runner = calls or StripeCalls(policy=backoff or Backoff(attempts=8), sleep=sleep)
    return runner.call(lambda: list_call(dict(params)))
