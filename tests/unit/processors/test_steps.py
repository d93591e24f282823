"""One record through the reducer, and the cache of decoded aggregates."""

from __future__ import annotations

import orjson

from billstream.processors import effects as fx
from billstream.processors.steps import StateCache, apply_record
from billstream.tables.tables import decode_customer
from tests.unit.processors import factories as f
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
