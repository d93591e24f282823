"""Every failure of a billing action as one documented JSON error (docs/api.md, "Errors").

Stripe's errors are mapped by kind, never passed through: a card decline is the customer's to
fix (402 with Stripe's code), a bad parameter is the caller's (400 naming it), Stripe down or
throttling is nobody's fault and worth a retry (503, 429 with `Retry-After`). The messages
carry Stripe's text for the request, never the request itself, a key or card data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import stripe

# `reason` of stripe_subscription_change_error_total: a bounded set, exported at 0.
REASONS = (
    "card_error",
    "invalid_request",
    "not_found",
    "conflict",
    "unprocessable",
    "rate_limited",
    "unavailable",
)
DEFAULT_RETRY_AFTER_SECONDS = 1


@dataclass
class BillingError(Exception):
    """A billing action's answer when it cannot be done: status, error code, what to fix."""

    status: int
    error: str
    message: str
    field: str | None = None
    code: str | None = None
    decline_code: str | None = None
    retry_after: int | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def reason(self) -> str:
        """The bounded metric label of this failure."""
        by_status = {402: "card_error", 404: "not_found", 409: "conflict", 422: "unprocessable"}
        by_status |= {429: "rate_limited", 503: "unavailable"}
        return by_status.get(self.status, "invalid_request")

    def body(self) -> dict[str, str]:
        body = {"error": self.error, "message": self.message}
        for name in ("field", "code", "decline_code"):
            value = getattr(self, name)
            if value:
                body[name] = value
        return body

    def response_headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return dict(self.headers)
        return {**self.headers, "Retry-After": str(self.retry_after)}


def bad_field(field_name: str, message: str) -> BillingError:
    """400: the request's own value is wrong; `field` names it."""
    return BillingError(400, "bad_request", message, field=field_name)


def unprocessable(field_name: str, message: str) -> BillingError:
    """422: well-formed but not something billstream sells (unknown plan or interval)."""
    return BillingError(422, "unprocessable", message, field=field_name)


def conflict(error: str, message: str) -> BillingError:
    """409: the object's current state does not allow the action."""
    return BillingError(409, error, message)


def _retry_after(error: stripe.StripeError) -> int:
    raw = (error.headers or {}).get("Retry-After") or (error.headers or {}).get("retry-after")
    try:
        return max(1, int(float(raw))) if raw is not None else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS


def from_stripe(error: stripe.StripeError) -> BillingError:
    """The answer to give for a Stripe error (checked most specific first)."""
    message = (error.user_message or "").replace("\n", " ") or type(error).__name__
    if isinstance(error, stripe.CardError):
        decline = getattr(error, "error", None)
        decline_code = getattr(decline, "decline_code", None) if decline is not None else None
        return BillingError(
            402,
            "card_error",
            message,
            code=error.code or "card_declined",
            decline_code=decline_code,
            field=getattr(error, "param", None) or None,
        )
    if isinstance(error, stripe.RateLimitError):
        return BillingError(
            429,
            "rate_limited",
            "Stripe is rate limiting requests; retry later",
            retry_after=_retry_after(error),
        )
    if isinstance(error, stripe.IdempotencyError):
        return conflict("idempotency_conflict", message)
    if isinstance(error, stripe.InvalidRequestError):
        param = getattr(error, "param", None) or None
        if error.http_status == 404:
            return BillingError(404, "not_found", message, field=param, code=error.code)
        return BillingError(400, "invalid_request", message, field=param, code=error.code)
    if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
        return BillingError(
            503, "stripe_misconfigured", "Stripe refused billstream's API key", retry_after=30
        )
    # APIConnectionError (unreachable, timeout) and APIError (Stripe's 5xx)
    return BillingError(
        503,
        "stripe_unavailable",
        "Stripe cannot be reached; retry later",
        retry_after=DEFAULT_RETRY_AFTER_SECONDS,
    )
