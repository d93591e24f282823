"""Property: no Stripe-Signature header and no body, signed or not, ever gets a 5xx."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billstream.ingest.app import WEBHOOK_PATH
from billstream.stripe_signing import compute_signature
from tests.unit.ingest.conftest import Ingest, IngestFactory
from tests.unit.ingest.support import SECRET

ANSWERS = {
    200: {"queued", "ignored"},
    400: {"invalid_signature", "invalid_payload", "wrong_endpoint"},
    413: {"too_large"},
}
REASONS = {
    "invalid_signature",
    "invalid_payload",
    "wrong_endpoint",
    "too_large",
    "timeout",
    "unavailable",
    "overloaded",
}

# Header values an HTTP client can send: no control characters (aiohttp's parser answers those).
header_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
event_types = st.sampled_from(["invoice.paid", "charge.succeeded", "customer.deleted", ""]) | (
    st.text(max_size=30)
)
events = st.fixed_dictionaries(
    {"id": st.text(max_size=10) | json_values, "type": event_types | json_values},
    optional={"data": st.fixed_dictionaries({}, optional={"object": json_values}) | json_values},
)
# Shaped like an event, with odd values where routing looks (customer, id, account).
well_formed = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=10),
        "type": event_types,
        "data": st.fixed_dictionaries(
            {"object": st.dictionaries(st.sampled_from(["id", "customer", "object"]), json_values)}
        ),
    },
    optional={"account": json_values},
)
bodies = (
    well_formed.map(_dumps)
    | st.binary(max_size=2048)
    | json_values.map(_dumps)
    | events.map(_dumps)
    | st.binary(min_size=4097, max_size=5000)
)


@st.composite
def signature_headers(draw: st.DrawFn, body: bytes) -> str | None:
    """Absent, arbitrary text, or structured t=/v1= entries that sometimes really match."""
    now = int(time.time())
    kind = draw(st.sampled_from(["none", "text", "structured", "valid"]))
    if kind == "none":
        return None
    if kind == "text":
        return draw(header_text)
    timestamp = draw(st.sampled_from([now, now - 10_000, now + 10_000]))
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["t", "v1", "v0", ""]) | header_text.filter(lambda s: "," not in s),
                st.just(str(timestamp))
                | st.just(compute_signature(body, SECRET, timestamp))
                | header_text.filter(lambda s: "," not in s),
            ),
            max_size=5,
        )
    )
    if kind == "valid":
        entries.insert(0, ("t", str(now)))
        entries.append(("v1", compute_signature(body, SECRET, now)))
    return ",".join(f"{key}={value}" for key, value in entries)


@pytest.fixture
async def small_ingest(make_ingest: IngestFactory) -> Ingest:
    """One app for every example (a 4 KiB limit so that 413 is reachable). Shedding on the
    loop's lag answers to load, not to input: off here, where a busy machine and hypothesis
    itself hold the loop up."""
    return await make_ingest(stripe_webhook_max_body=4096, ingest_max_loop_lag_ms=60_000)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_input_gets_a_5xx(small_ingest: Ingest, data: st.DataObject) -> None:
    ingest = small_ingest
    body = data.draw(bodies)
    signature = data.draw(signature_headers(body))
    headers = {} if signature is None else {"Stripe-Signature": signature}
    response = await ingest.client.post(WEBHOOK_PATH, data=body, headers=headers)
    answer = await response.json()
    event(answer["status"])  # --hypothesis-show-statistics shows every outcome is reached
    assert answer["status"] in ANSWERS[response.status]
    rejected = ingest.registry.collect()
    reasons = {
        sample.labels["reason"]
        for family in rejected
        if family.name == "stripe_webhook_rejected"
        for sample in family.samples
    }
    assert reasons <= REASONS
