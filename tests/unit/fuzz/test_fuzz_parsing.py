"""Fuzz: the worker's parsing and reducer apply a record or raise InvalidEvent, nothing else.

InvalidEvent sends a poison record to the DLQ with a bounded reason; any other exception is a
reducer bug (`reducer_error`). Inputs are bytes, arbitrary JSON, and realistic Stripe events
with a few nodes replaced, removed or added, folded in sequence through the worker's own
per-record core (`apply_record`: parse, apply, encode the table value and the output).
Examples per test come from the hypothesis profile: `make fuzz` runs many more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import event, given
from hypothesis import strategies as st

from billstream.processors.parsing import InvalidEvent, parse_event, read_envelope
from billstream.processors.reducer import SUBSCRIPTION_LABELS
from billstream.processors.steps import apply_record
from billstream.tables.codec import decode_customer
from tests.support import factories as f
from tests.unit.fuzz.strategies import json_values, mutated
from tests.unit.processors.support import CONFIG

Json = dict[str, Any]
DLQ_REASON = re.compile(r"[a-z_]{1,40}")
TYPES = sorted(
    {
        *SUBSCRIPTION_LABELS,
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.payment_succeeded",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.finalized",
        "invoice.upcoming",
        "customer.deleted",
        "checkout.session.completed",
    }
)
PRICES = (f.pro_monthly, f.business_yearly, f.unknown_price)


@st.composite
def stripe_events(draw: st.DrawFn) -> Json:
    """A realistic event of any family, then mutated; ids repeat so duplicates happen."""
    created = draw(st.integers(0, 2**33))
    event_id = draw(st.sampled_from(["evt_1", "evt_2", "evt_3", None]))
    builders: list[Callable[[], Json]] = [
        lambda: f.subscription_event(
            draw(st.sampled_from(sorted(SUBSCRIPTION_LABELS))),
            created=created,
            event_id=event_id,
            sub_id=draw(st.sampled_from(["sub_a", "sub_b"])),
            status=draw(st.sampled_from(["active", "trialing", "past_due", "canceled", "?"])),
            prices=[make() for make in draw(st.lists(st.sampled_from(PRICES), max_size=2))],
            period=draw(st.sampled_from(["top", "items"])),
            cancel_at_period_end=draw(st.booleans()),
            pending_plan=draw(st.sampled_from([None, "FREE", "BUSINESS", "GOLD"])),
        ),
        lambda: f.invoice_event(
            draw(st.sampled_from([t for t in TYPES if t.startswith("invoice.")])),
            created=created,
            event_id=event_id,
            invoice_id=draw(st.sampled_from(["in_1", "in_2"])),
            subscription_id=draw(st.sampled_from(["sub_a", "sub_b", None])),
            shape=draw(st.sampled_from(["old", "basil"])),
        ),
        lambda: f.customer_event(created=created, event_id=event_id),
        lambda: f.checkout_completed(created=created, event_id=event_id),
    ]
    stripe_event = draw(st.sampled_from(builders))()
    if draw(st.booleans()):
        stripe_event["type"] = draw(st.sampled_from(TYPES))  # a rule meets another's object
    return draw(mutated(stripe_event))


def encoded(value: Any) -> bytes:
    """The bytes a record would carry (orjson refuses nothing `json_values` makes)."""
    return orjson.dumps(value)


raw_records = (
    st.binary(max_size=200)
    | json_values.map(encoded)
    | stripe_events().map(encoded)
    | stripe_events().map(lambda event: encoded(event)[: len(encoded(event)) // 2])
)


@given(raw_records)
def test_parse_event_returns_an_object_or_raises_invalid_event(raw: bytes) -> None:
    try:
        parsed = parse_event(raw)
    except InvalidEvent as error:
        reason = error.reason
    else:
        assert isinstance(parsed, dict)
        return
    assert reason in {"not_json", "not_object"}


@given(json_values | stripe_events())
def test_read_envelope_validates_or_raises_invalid_event(value: Any) -> None:
    try:
        envelope = read_envelope(value)
    except InvalidEvent as error:
        reason = error.reason
    else:
        assert envelope.id
        assert envelope.type
        assert isinstance(envelope.created, int)
        return
    assert reason in {"not_object", "missing_field", "bad_type"}


# Mostly events shaped like Stripe's, so that rules run deep, not only the envelope check.
fold_records = st.one_of(*[stripe_events().map(encoded)] * 3, raw_records)


@given(st.lists(fold_records, min_size=1, max_size=6))
def test_apply_record_folds_or_dead_letters_never_crashes(records: list[bytes]) -> None:
    table_value: bytes | None = None
    reasons: list[str] = []
    for raw in records:
        try:
            applied = apply_record(table_value, raw, CONFIG)
        except InvalidEvent as error:
            reasons.append(error.reason)
            event(f"dead-lettered: {error.reason}")  # --hypothesis-show-statistics
            continue
        event("applied")
        table_value = applied.value if applied.value is not None else table_value
        state = decode_customer(table_value)
        assert state is not None or applied.value is None
        if applied.output is not None:
            assert isinstance(orjson.loads(applied.output), dict)
    assert all(DLQ_REASON.fullmatch(reason) for reason in reasons)  # labels, not messages
