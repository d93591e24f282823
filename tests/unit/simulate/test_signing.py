"""The shared signer produces headers Stripe's own library accepts, and only for that secret."""

from __future__ import annotations

import pytest
import stripe

from billstream.stripe_signing import sign_payload

BODY = b'{\n  "id": "evt_1",\n  "object": "event"\n}'


def test_stripe_library_verifies_the_header() -> None:
    header = sign_payload(BODY, "whsec_abc", 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    stripe.WebhookSignature.verify_header(BODY.decode(), header, "whsec_abc", tolerance=None)


@pytest.mark.parametrize(("body", "secret"), [(BODY, "whsec_other"), (BODY + b" ", "whsec_abc")])
def test_another_secret_or_body_does_not_verify(body: bytes, secret: str) -> None:
    header = sign_payload(BODY, "whsec_abc", 1_700_000_000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=None)
