"""Signature verification: rotation, several v1 entries, and the tolerance window both ways."""

from __future__ import annotations

import time

import pytest

from billstream.ingest.signature import InvalidSignature, SignatureVerifier, signed_timestamp
from billstream.stripe_signing import compute_signature, sign_payload, signature_header

BODY = b'{\n  "id": "evt_1",\n  "type": "invoice.paid"\n}'
OLD, NEW = "whsec_old_secret", "whsec_new_secret"
TOLERANCE = 300
MARGIN = 5  # seconds either side of a tolerance edge; far more than a test takes


def verifier(*secrets: str) -> SignatureVerifier:
    return SignatureVerifier(secrets or (OLD, NEW), TOLERANCE)


@pytest.mark.parametrize("secret", [OLD, NEW])
def test_during_rotation_old_and_new_secret_both_verify(secret: str) -> None:
    verifier().verify(BODY, sign_payload(BODY, secret))


def test_a_secret_that_is_not_configured_does_not_verify() -> None:
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verifier().verify(BODY, sign_payload(BODY, "whsec_retired"))


def test_after_rotation_the_old_secret_no_longer_verifies() -> None:
    with pytest.raises(InvalidSignature):
        verifier(NEW).verify(BODY, sign_payload(BODY, OLD))


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_of_several_v1_entries_may_match(position: int) -> None:
    now = int(time.time())
    signatures = [compute_signature(BODY, "whsec_other", now), "ab" * 32, "cd" * 32]
    signatures[position] = compute_signature(BODY, NEW, now)
    verifier().verify(BODY, signature_header(now, *signatures))


def test_several_v1_entries_none_matching() -> None:
    now = int(time.time())
    header = signature_header(now, "ab" * 32, compute_signature(BODY + b"x", NEW, now))
    with pytest.raises(InvalidSignature):
        verifier().verify(BODY, header)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-TOLERANCE + MARGIN, True),  # just inside, in the past
        (-TOLERANCE - MARGIN, False),  # just outside, in the past
        (TOLERANCE - MARGIN, True),  # just inside, in the future (clock skew)
        (TOLERANCE + MARGIN, False),  # just outside, in the future
        (0, True),
    ],
)
def test_tolerance_applies_to_past_and_future(offset: int, accepted: bool) -> None:
    header = sign_payload(BODY, OLD, int(time.time()) + offset)
    if accepted:
        verifier().verify(BODY, header)
    else:
        with pytest.raises(InvalidSignature, match="timestamp"):
            verifier().verify(BODY, header)


def test_future_check_uses_the_injected_clock() -> None:
    now = 2_000_000_000.0
    header = sign_payload(BODY, OLD, int(now) + TOLERANCE + 1)
    late = SignatureVerifier((OLD,), TOLERANCE, clock=lambda: now + 2)
    late.verify(BODY, header)  # what is "future" depends on the clock, not on time.time()
    with pytest.raises(InvalidSignature, match="future"):
        SignatureVerifier((OLD,), TOLERANCE, clock=lambda: now).verify(BODY, header)


@pytest.mark.parametrize(
    "header",
    [None, "", "t=", "t=x,v1=00", "v1=00", "t", "t=1" * 3, f"t={int(time.time())},v1=\u00e9"],
)
def test_malformed_headers_raise_only_invalid_signature(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verifier().verify(BODY, header)


def test_a_signed_non_utf8_body_verifies_on_its_raw_bytes() -> None:
    body = b'{"id": "evt_\xff\xfe"}'
    verifier().verify(body, sign_payload(body, OLD))  # the handler then calls it invalid_payload
    now = int(time.time())
    verifier().verify(body, signature_header(now, "0" * 64, compute_signature(body, NEW, now)))
    with pytest.raises(InvalidSignature, match="no signature matches"):
        verifier().verify(body, sign_payload(body, "whsec_not_configured"))
    with pytest.raises(InvalidSignature, match="too old"):
        verifier().verify(body, sign_payload(body, OLD, timestamp=int(time.time()) - 3600))


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        SignatureVerifier((), TOLERANCE)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("t=12,v1=ab", 12), ("v1=ab,t=7", 7), ("t=5,t=6", 5), ("t=9=1,v1=ab", 9)],
)
def test_signed_timestamp_parses_like_stripe(header: str, expected: int) -> None:
    assert signed_timestamp(header) == expected
