"""Sign webhook bodies exactly as Stripe does, for tests, the simulator and benchmarks.

Stripe's `Stripe-Signature` header is `t=<unix ts>,v1=<hex HMAC-SHA256 of "<ts>.<raw body>">`, keyed
with the whole `whsec_...` secret. Verification lives in `billstream.ingest.signature` and uses
stripe-python; this module only produces signatures, so it has no dependency.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def compute_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The hex `v1` signature of `body` at `timestamp` (the part after `v1=`)."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for `body`, signed now unless `timestamp` is given."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute_signature(body, secret, ts)}"


def signature_header(timestamp: int, *signatures: str) -> str:
    """A header carrying several `v1` entries, as Stripe sends while a secret is being rolled."""
    return ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])
