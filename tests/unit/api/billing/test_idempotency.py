"""Idempotency keys: derived ones are stable, client ones are checked, first answers replayed."""

from __future__ import annotations

import pytest

from billstream.api.billing.errors import BillingError
from billstream.api.billing.idempotency import (
    ReplayCache,
    client_key,
    derived_key,
    fingerprint,
    scoped,
    window,
)


def test_the_digest_ignores_key_order_but_not_values() -> None:
    one = fingerprint("checkout", {}, {"plan": "PRO", "interval": "year"})
    assert one == fingerprint("checkout", {}, {"interval": "year", "plan": "PRO"})
    assert one != fingerprint("checkout", {}, {"interval": "month", "plan": "PRO"})
    assert one != fingerprint("subscriptions", {}, {"plan": "PRO", "interval": "year"})
    assert fingerprint("change", {"subscription_id": "sub_1"}, {}) != fingerprint(
        "change", {"subscription_id": "sub_2"}, {}
    )


def test_derived_keys_name_the_action_and_fit_stripes_limit() -> None:
    key = derived_key("change", "d" * 64, "price_1", None, "False")
    assert key.startswith("billstream-change-")
    assert len(key) <= 255
    assert key == derived_key("change", "d" * 64, "price_1", None, "False")
    assert key != derived_key("change", "d" * 64, "price_1", "PRO", "False")
    assert scoped(key) == key
    assert scoped(key, "pay") == f"{key}:pay"
    assert window(600, now=1_200) == window(600, now=1_799) != window(600, now=1_800)


@pytest.mark.parametrize("value", ["", "a b", "x" * 201, "é"])
def test_a_client_key_must_be_printable_ascii_and_short(value: str) -> None:
    with pytest.raises(BillingError) as raised:
        client_key({"Idempotency-Key": value})
    assert (raised.value.status, raised.value.field) == (400, "Idempotency-Key")


def test_a_client_key_is_passed_through_or_absent() -> None:
    assert client_key({"Idempotency-Key": "click-1"}) == "click-1"
    assert client_key({}) is None


def test_replays_expire_and_the_oldest_go_first() -> None:
    cache = ReplayCache(capacity=2, ttl=60)
    cache.put("a", "d1", 200, b"A")
    cache.put("b", "d2", 200, b"B")
    assert cache.get("a", "d1") is not None  # a is now the most recent
    cache.put("c", "d3", 200, b"C")
    assert cache.get("b", "d2") is None  # evicted
    assert cache.get("a", "d1") is not None
    with pytest.raises(BillingError) as raised:
        cache.get("a", "another request")
    assert raised.value.status == 409

    expired = ReplayCache(ttl=-1)  # older than its ttl as soon as stored
    expired.put("a", "d1", 200, b"A")
    assert expired.get("a", "d1") is None
