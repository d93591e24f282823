"""One configured stripe-python client for the tools that call Stripe's API (backfill, reconcile).

Built from Settings only, so tests point it at stripe-mock with `STRIPE_API_BASE` and nothing
else; the sync `requests` transport is used (stripe-python's own dependency) from a thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import stripe

from billstream.settings import Settings

if TYPE_CHECKING:
    from stripe._base_address import BaseAddresses

# The one API version billstream sends (`Stripe-Version`) on every call it makes: the version
# stripe-python 16.1.0 (constraints.txt) is generated for, so its typed objects match the responses.
# Webhook payloads are rendered in the endpoint's version instead and the reducer reads every
# version's shape (docs/state.md, "API versions"); this pin only governs our own requests.
STRIPE_API_VERSION = "2026-10-28.endive"

# Stripe retries 409/5xx/connection errors itself; 429 is left to callers (they back off longer).
DEFAULT_MAX_NETWORK_RETRIES = 2
DEFAULT_TIMEOUT_SECONDS = 30.0


class StripeNotConfigured(Exception):
    """STRIPE_API_KEY is missing: the tools cannot call Stripe at all."""


def make_stripe_client(
    settings: Settings,
    *,
    http_client: stripe.HTTPClient | None = None,
    max_network_retries: int = DEFAULT_MAX_NETWORK_RETRIES,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> stripe.StripeClient:
    """A StripeClient for STRIPE_API_KEY at STRIPE_API_BASE (Stripe's own when unset)."""
    if settings.stripe_api_key is None or not settings.stripe_api_key.get_secret_value():
        raise StripeNotConfigured("STRIPE_API_KEY is not set")
    # stripe-python logs every request at INFO; our tools report what matters themselves.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    base_addresses: BaseAddresses = {}
    if settings.stripe_api_base:
        base_addresses["api"] = settings.stripe_api_base.rstrip("/")
    return stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses=base_addresses,
        stripe_version=STRIPE_API_VERSION,
        max_network_retries=max_network_retries,
        http_client=http_client or stripe.RequestsClient(timeout=timeout),
    )


def api_base(settings: Settings) -> str:
    """Where the client sends requests, for error messages."""
    return (settings.stripe_api_base or stripe.DEFAULT_API_BASE).rstrip("/")


def describe_stripe_error(error: stripe.StripeError) -> str:
    """One line for operators: what kind of failure, the HTTP status and Stripe's message."""
    if isinstance(error, stripe.AuthenticationError):
        kind = "Stripe rejected STRIPE_API_KEY"
    elif isinstance(error, stripe.PermissionError):
        kind = "STRIPE_API_KEY lacks the permission"
    elif isinstance(error, stripe.RateLimitError):
        kind = "rate limited by Stripe"
    elif isinstance(error, stripe.APIConnectionError):
        kind = "cannot reach Stripe"
    else:
        kind = type(error).__name__
    status = f" (HTTP {error.http_status})" if error.http_status else ""
    message = error.user_message or str(error) or "no message"
    return f"{kind}{status}: {message}".replace("\n", " ")
