"""Stripe-Signature verification on the raw body, with every configured secret (rotation)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence

from stripe import SignatureVerificationError, WebhookSignature

from billstream.stripe_signing import compute_signature


class InvalidSignature(Exception):
    """The request is not provably from Stripe; the message says why (safe to log)."""


def signed_timestamp(header: str) -> int:
    """The `t=` value of a Stripe-Signature header, parsed the way stripe-python parses it."""
    for item in header.split(","):
        key, _, rest = item.partition("=")
        if key == "t":
            return int(rest.partition("=")[0])
    raise ValueError("no t= entry")


class SignatureVerifier:
    """Accepts a body when any `v1` signature matches any secret within the tolerance window.

    `WebhookSignature.verify_header` does the constant-time comparison and rejects timestamps
    older than the tolerance; it does not look at timestamps in the future, so we do.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook signing secret is required")
        self._secrets = tuple(secrets)
        self._tolerance = tolerance
        self._clock = clock

    def verify(self, body: bytes, header: str | None) -> str:
        """The secret that verifies; raise `InvalidSignature` otherwise (never anything else)."""
        if not header:
            raise InvalidSignature("missing Stripe-Signature header")
        if not header.isascii():  # Stripe's never is; compare_digest would raise mid-header
            raise InvalidSignature("malformed Stripe-Signature header")
        try:
            timestamp = signed_timestamp(header)
        except ValueError:
            raise InvalidSignature("malformed Stripe-Signature header") from None
        now = self._clock()
        if timestamp > now + self._tolerance:
            raise InvalidSignature("timestamp too far in the future")
        if timestamp < now - self._tolerance:
            raise InvalidSignature("timestamp too old")
        try:
            payload = body.decode("utf-8")  # Stripe signs text; decode once for every secret
        except UnicodeDecodeError:
            return self._verify_raw(body, header, timestamp)
        for secret in self._secrets:
            try:
                WebhookSignature.verify_header(payload, header, secret, self._tolerance)
            except SignatureVerificationError:
                continue
            except (TypeError, ValueError):  # e.g. a non-ASCII v1 value in compare_digest
                raise InvalidSignature("malformed Stripe-Signature header") from None
            return secret
        raise InvalidSignature("no signature matches a configured secret")

    def _verify_raw(self, body: bytes, header: str, timestamp: int) -> str:
        """Verify a body that is not UTF-8 on its raw bytes, as Stripe's HMAC is defined.

        stripe-python takes the payload as text, so it cannot: a verified non-UTF-8 body must
        still be told apart from a forged one (400 invalid_payload, not invalid_signature).
        """
        items = [item.split("=", 2) for item in header.split(",")]  # as stripe-python reads it
        if any(len(item) < 2 for item in items if item[0] in ("t", "v1")):
            raise InvalidSignature("malformed Stripe-Signature header")
        signatures = [item[1] for item in items if item[0] == "v1"]
        for secret in self._secrets:
            expected = compute_signature(body, secret, timestamp)
            if any(hmac.compare_digest(expected, signature) for signature in signatures):
                return secret
        raise InvalidSignature("no signature matches a configured secret")
