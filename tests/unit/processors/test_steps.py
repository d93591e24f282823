"""One record through the reducer, and the cache of decoded aggregates."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from billstream.api.episodes import decode_episode
from billstream.processors import effects as fx
from billstream.processors.parsing import InvalidEvent
from billstream.processors.steps import StateCache, apply_record
from billstream.tables.codec import decode_customer
from tests.support import factories as f
from tests.unit.processors.support import CONFIG

KEY = f.CUSTOMER.encode()


def created(at: int) -> bytes:
    event = f.subscription_event(
        "customer.subscription.created", created=at, prices=[f.pro_monthly()]
    )
    return orjson.dumps(event)


def test_a_change_yields_the_encoded_aggregate_and_the_account_json() -> None:
    applied = apply_record(None, created(100), CONFIG)

    assert applied.value is not None
    assert decode_customer(applied.value) == applied.state
    assert applied.output is not None
    assert orjson.loads(applied.output)["plan"] == "PRO"


def test_a_duplicate_rewrites_the_same_value_and_re_emits_the_view() -> None:
    raw = created(100)
    first = apply_record(None, raw, CONFIG)
    again = apply_record(first.value, raw, CONFIG)

    assert any(isinstance(e, fx.Duplicate) for e in again.effects)
    assert (again.value, again.output) == (first.value, first.output)


def test_the_cache_serves_only_the_exact_bytes_it_stored() -> None:
    cache = StateCache(size=2)
    applied = apply_record(None, created(100), CONFIG)
    cache.keep(KEY, applied)
    assert applied.value is not None

    assert cache.load(KEY, applied.value) is applied.state
    assert cache.load(KEY, bytes(applied.value)) is applied.state  # equal content (RocksDB)
    other = apply_record(applied.value, created(200), CONFIG).value
    assert cache.load(KEY, other) is not applied.state  # the table moved on: decoded afresh
    assert cache.load(KEY, other) == decode_customer(other)
    assert cache.load(KEY, None) is None


def test_the_cache_keeps_the_most_recently_used_customers() -> None:
    cache = StateCache(size=2)
    applied = {k: apply_record(None, created(100), CONFIG) for k in (b"a", b"b", b"c")}
    cache.keep(b"a", applied[b"a"])
    cache.keep(b"b", applied[b"b"])
    cache.load(b"a", applied[b"a"].value)  # a is now the most recent
    cache.keep(b"c", applied[b"c"])

    assert cache.load(b"a", applied[b"a"].value) is applied[b"a"].state
    assert cache.load(b"b", applied[b"b"].value) is not applied[b"b"].state  # evicted


def test_folding_from_a_cached_state_leaves_it_untouched() -> None:
    first = apply_record(None, created(100), CONFIG)
    assert first.state is not None
    assert first.value is not None
    snapshot = first.state.to_dict()

    apply_record(first.value, created(200), CONFIG, first.state)

    assert first.state.to_dict() == snapshot


def poison_reason(raw: bytes) -> str:
    with pytest.raises(InvalidEvent) as raised:
        apply_record(None, raw, CONFIG)
    return raised.value.reason


def subscription_created(**fields: Any) -> bytes:
    fields.setdefault("prices", [f.pro_monthly()])
    created_at = fields.pop("created", 100)
    event = f.subscription_event("customer.subscription.created", created=created_at, **fields)
    return json.dumps(event).encode()  # the stdlib writes any integer, as a sender may


def test_integers_beyond_64_bits_are_dead_lettered_never_published() -> None:
    assert poison_reason(subscription_created(current_period_end=2**63)) == "out_of_range"
    assert poison_reason(subscription_created(created=2**63)) == "out_of_range"
    assert poison_reason(subscription_created(created=-(2**63) - 1)) == "bad_type"  # a float
    edge = apply_record(None, subscription_created(current_period_end=2**63 - 1), CONFIG)
    assert edge.output is not None
    assert orjson.loads(edge.output)["current_period_end"] == 2**63 - 1


def test_strings_beyond_stripes_limits_are_dead_lettered() -> None:
    longest = apply_record(None, subscription_created(pending_plan="p" * 500), CONFIG)
    assert longest.output is not None
    assert orjson.loads(longest.output)["pending_plan"] == "p" * 500  # Stripe's metadata limit
    assert poison_reason(subscription_created(pending_plan="p" * 501)) == "too_long"
    assert poison_reason(subscription_created(sub_id="sub_" + "x" * 252)) == "too_long"
    assert poison_reason(subscription_created(event_id="evt_" + "x" * 252)) == "too_long"
    assert poison_reason(subscription_created(pending_plan="a\x00b")) == "bad_character"


def test_an_overlong_customer_id_is_dead_lettered() -> None:
    customer = "cus_" + "c" * 252
    assert poison_reason(subscription_created(customer=customer)) == "too_long"
    assert apply_record(None, subscription_created(customer=customer[:255]), CONFIG).output


def payment_failed(**fields: Any) -> bytes:
    created_at = fields.pop("created", 100)
    event = f.invoice_event("invoice.payment_failed", created=created_at, **fields)
    return json.dumps(event).encode()


def test_an_episode_the_read_model_cannot_store_is_dead_lettered() -> None:
    """The episode record is checked like the account: an INTEGER attempt count, a dated opening."""
    for edge in (payment_failed(attempt_count=2**31 - 1), payment_failed(created=253_402_300_799)):
        [(key, record)] = apply_record(None, edge, CONFIG).episodes
        stored = decode_episode(key, record)  # what the api's read model accepts and stores
        assert stored is not None
        assert stored.row()["opened_month"]
    assert poison_reason(payment_failed(attempt_count=2**31)) == "out_of_range"
    assert poison_reason(payment_failed(created=253_402_300_800)) == "out_of_range"  # year 10000
    assert poison_reason(payment_failed(subscription_id="sub_" + "x" * 252)) == "too_long"
    assert poison_reason(payment_failed(invoice_id="in_\x01")) == "bad_character"
