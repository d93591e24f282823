"""Signature verification: rotation, several v1 entries, and the tolerance window both ways."""

from __future__ import annotations

import time

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from stripe import SignatureVerificationError, WebhookSignature

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


def test_non_utf8_body_raises_only_invalid_signature() -> None:
    body = b"\xff\xfe"
    with pytest.raises(InvalidSignature, match="UTF-8"):
        verifier().verify(body, sign_payload(body, OLD))


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        SignatureVerifier((), TOLERANCE)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("t=12,v1=ab", 12), ("v1=ab,t=7", 7), ("t=5,t=6", 5), ("t=9=1,v1=ab", 9)],
)
def test_signed_timestamp_parses_like_stripe(header: str, expected: int) -> None:
    assert signed_timestamp(header) == expected


# Equivalence with stripe-python: SignatureVerifier runs its check on the raw bytes itself.
SECRETS = ("whsec_old_secret", "whsec_new_secret", "whsec_other", " ")
NOW = int(time.time())
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
any_text = st.text(max_size=12)


@st.composite
def headers_for(draw: st.DrawFn, body: bytes, secrets: tuple[str, ...]) -> str:
    """Headers as Stripe sends them (half the time signed with a configured secret, now), and
    mangled: odd timestamps, entries without `=`, values with a second `=`, other schemes,
    signatures of other secrets or times, trailing text."""
    if draw(st.booleans()):
        timestamp = spelled = NOW
        signature = compute_signature(body, draw(st.sampled_from(secrets)), NOW)
    else:
        timestamp = draw(st.sampled_from([NOW, NOW - 10_000, NOW + 10_000]))
        spelled = draw(
            st.sampled_from([timestamp, f" {timestamp}", f"+{timestamp}", f"{timestamp}=x"])
            | st.sampled_from(["", "x", "1_0", "-5"])
        )
        signed_at = draw(st.sampled_from([timestamp, timestamp + 1]))
        secret = draw(st.sampled_from([*SECRETS, "whsec_retired"]))
        signature = compute_signature(body, secret, signed_at)
    mangled = [signature.upper(), signature[:-1], f"{signature}=x", f"{signature}=", ""]
    value = st.sampled_from([signature] * len(mangled) + mangled)  # exact half the time
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["t", "v1", "v0", "", "T", " v1"]) | ascii_text,
                st.none() | value | ascii_text,
            ),
            max_size=3,
        )
    )
    entries.insert(draw(st.integers(0, len(entries))), ("t", str(spelled)))
    entries.insert(draw(st.integers(0, len(entries))), ("v1", draw(value)))
    header = ",".join(key if val is None else f"{key}={val}" for key, val in entries)
    return header + draw(st.just("") | any_text)


def stripe_verdict(body: bytes, header: str, secrets: tuple[str, ...]) -> bool:
    """stripe-python's answer, plus the two refusals SignatureVerifier adds on purpose:
    timestamps beyond the tolerance in the future, and non-ASCII headers."""
    if not header.isascii():
        return False
    for secret in secrets:
        try:
            WebhookSignature.verify_header(body, header, secret, TOLERANCE)
        except SignatureVerificationError:
            continue
        except (TypeError, ValueError):  # UnicodeDecodeError included
            return False
        return signed_timestamp(header) <= time.time() + TOLERANCE
    return False


@settings(max_examples=500, deadline=None)
@given(
    data=st.data(),
    body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode) | st.just(BODY),
    secrets=st.lists(st.sampled_from(SECRETS), min_size=1, max_size=3, unique=True).map(tuple),
)
def test_accepts_and_refuses_exactly_what_stripe_python_does(
    data: st.DataObject, body: bytes, secrets: tuple[str, ...]
) -> None:
    header = data.draw(headers_for(body, secrets))
    try:
        SignatureVerifier(secrets, TOLERANCE).verify(body, header)
    except InvalidSignature:
        accepted = False
    else:
        accepted = True
    event("accepted" if accepted else "refused")
    assert accepted == stripe_verdict(body, header, secrets)
