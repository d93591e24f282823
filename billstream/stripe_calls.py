"""Every Stripe API call billstream makes, under one discipline: rate, retries, a typed failure.

Stripe rate-limits each account (docs.stripe.com/rate-limits); the resolver, drift audit,
backfill, reconcile, entitlements and the api's billing actions share it, so one process-wide
token bucket spends `STRIPE_API_RATE` calls per second among them all. Transient failures
(connection errors, 5xx, 409 lock conflicts, 429) are retried here with exponential backoff and
jitter, a 429's `Retry-After` honoured; clients are built with `max_network_retries=0` so
stripe-python does not retry behind this module's back. What still fails leaves as
`StripeCallFailed` with a bounded `reason` (a metric label, a DLQ reason), the last Stripe
error attached for whoever maps it further (the billing actions' HTTP answers).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import stripe

from billstream.stripe_client import describe_stripe_error

T = TypeVar("T")
Clock = Callable[[], float]

DEFAULT_RATE = 20.0
MAX_RETRY_AFTER_SECONDS = 60.0

NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
API_ERROR = "api_error"
CONNECTION = "connection"
INVALID_REQUEST = "invalid_request"
AUTHENTICATION = "authentication"
CONFLICT = "conflict"
# Every reason a StripeCallFailed can carry: the one bounded list.
REASONS: tuple[str, ...] = (
    NOT_FOUND,
    RATE_LIMITED,
    API_ERROR,
    CONNECTION,
    INVALID_REQUEST,
    AUTHENTICATION,
    CONFLICT,
)


class Call(Protocol):
    """Runs one Stripe request: `StripeCalls.call`, or `direct` in tools and tests."""

    def __call__(self, fn: Callable[[], T], /) -> T: ...


def direct(fn: Callable[[], T]) -> T:
    """No limiter, no retries."""
    return fn()


class RateLimiter:
    """Token bucket: `rate` tokens a second, up to `burst` banked; thread-safe.

    `reserve()` takes a token now and says how long to wait before using it, so concurrent
    callers queue in order instead of racing for the next refill.
    """

    def __init__(self, rate: float, *, burst: float | None = None, clock: Clock = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds until the caller may make its call (0 when a token is banked)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> None:
        delay = self.reserve()
        if delay > 0:
            sleep(delay)

    async def acquire_async(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


_shared_lock = threading.Lock()
_shared: dict[float, RateLimiter] = {}
_configured_rate = DEFAULT_RATE


def shared_limiter(rate: float | None = None) -> RateLimiter:
    """The process's limiter for `rate` (the configured STRIPE_API_RATE when None)."""
    rate = _configured_rate if rate is None else rate
    with _shared_lock:
        if rate not in _shared:
            _shared[rate] = RateLimiter(rate)
        return _shared[rate]


def configure_rate(rate: float) -> None:
    """Set STRIPE_API_RATE for callers that have no settings at hand (cli.py does it once)."""
    global _configured_rate
    _configured_rate = rate


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts and how long to pause between them (exponential, jittered)."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    retry_rate_limited: bool = True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Pause before attempt `attempt + 1`; a 429's Retry-After wins when it gives one."""
        if retry_after is not None:
            return min(MAX_RETRY_AFTER_SECONDS, max(0.0, retry_after))
        jitter = 0.5 + random.random() / 2  # noqa: S311 (spreading retries, not security)
        return float(min(self.cap, self.base * 2**attempt) * jitter)


# The billing actions answer a person: fewer, shorter retries, and a 429 is passed on to the
# caller with its Retry-After rather than waited out (docs/api.md, "Errors").
INTERACTIVE = RetryPolicy(attempts=3, base=0.25, cap=2.0, retry_rate_limited=False)
ONCE = RetryPolicy(attempts=1)


class StripeCallFailed(Exception):
    """A Stripe call that failed for good: `reason` is one of REASONS."""

    def __init__(self, reason: str, error: stripe.StripeError | None, attempts: int) -> None:
        detail = describe_stripe_error(error) if error is not None else "no error"
        super().__init__(f"{detail} ({reason}, {attempts} attempt(s))")
        self.reason = reason
        self.error = error
        self.attempts = attempts


def classify(error: stripe.StripeError) -> tuple[str, bool]:
    """The bounded reason of a Stripe error and whether another attempt may succeed."""
    status = error.http_status or 0
    if isinstance(error, stripe.RateLimitError) or status == 429:
        return RATE_LIMITED, True
    if isinstance(error, stripe.APIConnectionError):
        return CONNECTION, True
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return AUTHENTICATION, False
    if isinstance(error, stripe.IdempotencyError):
        return CONFLICT, False
    if status == 409:  # lock_timeout: Stripe asks to retry
        return CONFLICT, True
    if status >= 500 or isinstance(error, stripe.APIError):
        return API_ERROR, True
    if status == 404:
        return NOT_FOUND, False
    return INVALID_REQUEST, False


def retry_after_seconds(error: stripe.StripeError) -> float | None:
    """A 429's `Retry-After` in seconds, when it has a usable one."""
    headers = error.headers or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


class StripeCalls:
    """Runs Stripe calls through the limiter and the retry policy (sync or from asyncio)."""

    def __init__(
        self,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter or shared_limiter()
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def _next(self, error: stripe.StripeError, attempt: int) -> float:
        """The pause before another attempt, or raise StripeCallFailed."""
        reason, retryable = classify(error)
        if reason == RATE_LIMITED and not self.policy.retry_rate_limited:
            retryable = False
        if not retryable or attempt + 1 >= self.policy.attempts:
            raise StripeCallFailed(reason, error, attempt + 1) from error
        retry_after = retry_after_seconds(error) if reason == RATE_LIMITED else None
        return self.policy.delay(attempt, retry_after)

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` (one Stripe request) in this thread, rate-limited and retried."""
        for attempt in range(self.policy.attempts):
            self.limiter.acquire(self._sleep)
            try:
                return fn()
            except stripe.StripeError as error:
                self._sleep(self._next(error, attempt))
        raise AssertionError("unreachable")

    async def call_async(self, fn: Callable[[], T]) -> T:
        """`fn()` (a sync Stripe request) in a thread; waits happen on the event loop."""
        for attempt in range(self.policy.attempts):
            await self.limiter.acquire_async()
            try:
                return await asyncio.to_thread(fn)
            except stripe.StripeError as error:
                await asyncio.sleep(self._next(error, attempt))
        raise AssertionError("unreachable")

    __call__ = call


def describe_failure(error: StripeCallFailed | stripe.StripeError) -> str:
    """One line for operators, whichever of the two a caller caught."""
    if isinstance(error, StripeCallFailed):
        return str(error)
    return describe_stripe_error(error)
