"""Fuzz: Stripe-Signature parsing and verification accept exactly the genuinely signed requests.

Any header text and body either verifies or raises InvalidSignature (never another exception),
and a header verifies only when a reference reading of it (stripe-python's: entries split on
`,`, the first `t=` is the timestamp) finds that timestamp within the tolerance and a `v1`
entry equal to the HMAC of `"<t>.<body>"` under a configured secret. In particular the
timestamp the tolerance check reads is the one that was signed: no replay of an old signature
under a fresh `t=`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from billstream.ingest.signature import InvalidSignature, SignatureVerifier, signed_timestamp
from billstream.stripe_signing import compute_signature

SECRETS = ("whsec_current", "whsec_previous")
OTHER = "whsec_another_endpoint"
TOLERANCE = 300

header_text = st.text(max_size=120)
junk = st.text(st.characters(codec="ascii"), max_size=40)
junk = st.one_of(junk, junk, junk, header_text)  # mostly ASCII, which gets past the first check
bodies = st.text(max_size=64).map(str.encode) | st.binary(max_size=64)
# Around both tolerance edges (10 s clear of the past one, which stripe-python checks with the
# wall clock), and far away.
edges = st.sampled_from([0, -1, -TOLERANCE + 10, -TOLERANCE - 10, TOLERANCE, TOLERANCE + 1])
offsets = st.one_of(edges, edges, edges, st.integers(-(10**12), 10**12))


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    header: str
    now: int  # the verifier's clock: the wall clock when the example was drawn


def spelled(draw: st.DrawFn, timestamp: int) -> str:
    """How a `t=` value may be spelled: plain, padded, signed, other digits, or junk."""
    plain = str(timestamp)
    variants = [plain, f" {plain}", f"+{plain}", f"0{plain}", plain.replace("1", "\u0661"), ""]
    return draw(st.sampled_from(variants) | junk)


@st.composite
def entries(draw: st.DrawFn, body: bytes, timestamp: int, now: int) -> str:
    """One header entry: a timestamp, a (near-)genuine signature, or junk."""
    key = draw(st.sampled_from(["t", "v1", "v0", "V1", " v1", ""]) | junk)
    if key == "t":
        value = spelled(draw, draw(st.sampled_from([timestamp, now, now - 3600])))
    else:
        secret = draw(st.sampled_from([*SECRETS, OTHER]))
        signed_at = draw(st.sampled_from([timestamp, now, timestamp + 1]))
        genuine = compute_signature(body, secret, signed_at)
        value = draw(st.sampled_from([genuine, genuine.upper(), genuine[:-1]]) | junk)
    separator = draw(st.sampled_from(["=", "=", "", "=x="]))
    return f"{key}{separator}{value}".replace(",", "")


@st.composite
def signed_requests(draw: st.DrawFn) -> SignedRequest:
    """Often Stripe's own `t=...,v1=...` shape, with extra entries anywhere around it."""
    now = int(time.time())
    body = draw(bodies)
    timestamp = now + draw(offsets)
    header = [
        f"t={timestamp}",
        f"v1={compute_signature(body, draw(st.sampled_from(SECRETS)), timestamp)}",
    ]
    if draw(st.integers(0, 3)) == 0:
        header = []
    for _ in range(draw(st.integers(0, 3))):
        header.insert(draw(st.integers(0, len(header))), draw(entries(body, timestamp, now)))
    return SignedRequest(body, ",".join(header), now)


def reference_accepts(request: SignedRequest) -> bool:
    """An independent reading of the contract (DESIGN.md, "Ingest"), the way Stripe signs."""
    if not request.header.isascii():  # Stripe's headers are ASCII: anything else is forged
        return False
    # The HMAC is over the raw bytes, UTF-8 or not (a verified non-event is invalid_payload).
    items = [item.split("=", 2) for item in request.header.split(",")]
    if any(len(item) < 2 for item in items if item[0] in ("t", "v1")):
        return False
    stamps = [item[1] for item in items if item[0] == "t"]
    try:
        timestamp = int(stamps[0])
    except (IndexError, ValueError):
        return False
    if abs(timestamp - request.now) > TOLERANCE:
        return False
    signatures = {item[1] for item in items if item[0] == "v1"}
    return any(compute_signature(request.body, s, timestamp) in signatures for s in SECRETS)


@given(header_text)
def test_signed_timestamp_is_an_int_or_a_value_error(header: str) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(signed_timestamp(header), int)


@given(bodies, st.none() | header_text)
def test_any_header_verifies_or_raises_invalid_signature(body: bytes, header: str | None) -> None:
    with pytest.raises(InvalidSignature, match=r"^[a-zA-Z -]+$"):  # a reason, safe to log
        SignatureVerifier(SECRETS, TOLERANCE).verify(body, header)


@given(signed_requests())
def test_verifies_exactly_the_genuinely_signed_requests(request: SignedRequest) -> None:
    verifier = SignatureVerifier(SECRETS, TOLERANCE, clock=lambda: request.now)
    try:
        verifier.verify(request.body, request.header)
        accepted = True
    except InvalidSignature as error:
        accepted = False
        event(str(error))
    event("accepted" if accepted else "rejected")
    assert accepted == reference_accepts(request), request.header
