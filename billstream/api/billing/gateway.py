"""Stripe calls off the event loop: the sync StripeClient in a small thread pool.

The sync client (stripe-python's `requests` transport) is the one every billstream tool
already configures through `make_stripe_client`, and the one the tests' recording transport
wraps, so the api's requests are built, retried and recorded exactly like the tools'. A
bounded pool also bounds how many Stripe calls the api has in flight. Each action goes through
billstream/stripe_calls.py (the process's STRIPE_API_RATE limiter, short retries of transient
failures; a 429 is passed on with its Retry-After, not waited out). Stripe errors leave here as
`BillingError`s; they are logged by kind and request id, never with the request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import stripe

from billstream.api.billing.errors import from_stripe
from billstream.stripe_calls import StripeCallFailed, StripeCalls

T = TypeVar("T")
STRIPE_THREADS = 8

log = logging.getLogger(__name__)


class StripeGateway:
    """Runs `fn(client, *args)` in the pool; a Stripe error becomes a `BillingError`."""

    def __init__(
        self,
        client: stripe.StripeClient,
        calls: StripeCalls | None = None,
        threads: int = STRIPE_THREADS,
    ) -> None:
        self.client = client
        self.calls = calls or StripeCalls()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="stripe")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        call = functools.partial(self.calls.call, functools.partial(fn, self.client, *args))
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except StripeCallFailed as failure:
            if failure.error is None:
                raise
            error = failure.error
            mapped = from_stripe(error)
            log.warning(
                "stripe call failed: %s (HTTP %s, code %s, request %s) -> %d",
                type(error).__name__,
                error.http_status,
                error.code,
                error.request_id,
                mapped.status,
            )
            raise mapped from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
