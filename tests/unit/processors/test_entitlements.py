"""Entitlement summaries: the account's features, beyond the ten a summary lists, in any order."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from billstream.entitlements.fetch import summary_event
from billstream.entitlements.request import request_id
from billstream.processors.effects import AccountChanged, Duplicate, EntitlementsIncomplete
from billstream.processors.parsing import InvalidEvent
from billstream.processors.steps import apply_record
from billstream.simulate.events import active_entitlement
from billstream.tables.codec import decode_customer, encode_customer
from tests.support import factories as f
from tests.unit.processors.support import CONFIG, fold, of_type, view

ELEVEN = [f"feature_{n:02d}" for n in range(11)]


def synthetic(features: list[str], created: int) -> dict[str, Any]:
    """What the resolver publishes for the request of the summary at `created`."""
    return summary_event(
        request_id=request_id(f.CUSTOMER, created),
        customer_id=f.CUSTOMER,
        created=created,
        entitlements=[active_entitlement(key) for key in features],
    )


def test_a_complete_summary_sets_the_sorted_lookup_keys() -> None:
    state, effects = fold([f.entitlements_event(["sso", "api", "audit"], created=100)])

    assert view(state)["features"] == ["api", "audit", "sso"]
    assert view(state)["version"] == 1
    assert view(state)["updated_by_event_type"] == "entitlements.active_entitlement_summary.updated"
    assert of_type(effects, EntitlementsIncomplete) == []
    assert len(of_type(effects, AccountChanged)) == 1


def test_eleven_features_take_the_partial_summary_then_the_fetched_list() -> None:
    partial = f.entitlements_event(ELEVEN, created=100)
    assert partial["data"]["object"]["entitlements"]["has_more"] is True

    state, effects = fold([partial])
    assert view(state)["features"] == ELEVEN[:10]  # what it has, at once
    assert of_type(effects, EntitlementsIncomplete) == [EntitlementsIncomplete(f.CUSTOMER, 100)]

    state, effects = fold([synthetic(ELEVEN, 100)], state)
    assert view(state)["features"] == ELEVEN
    assert view(state)["version"] == 2
    assert of_type(effects, EntitlementsIncomplete) == []


def test_the_fetched_list_first_and_the_partial_summary_after_it_changes_nothing() -> None:
    state, _ = fold([synthetic(ELEVEN, 100)])
    state, effects = fold([f.entitlements_event(ELEVEN, created=100)], state)

    assert view(state)["features"] == ELEVEN
    assert view(state)["version"] == 1
    assert of_type(effects, AccountChanged) == []
    assert of_type(effects, EntitlementsIncomplete) == []  # nothing left to fetch


def test_an_older_summary_never_overwrites_a_newer_one() -> None:
    state, _ = fold(
        [
            f.entitlements_event(["api"], created=200),
            f.entitlements_event(["api", "sso"], created=100),
            synthetic(ELEVEN, 150),  # a late answer to an older partial summary
        ]
    )
    assert view(state)["features"] == ["api"]


def test_a_newer_partial_summary_replaces_a_complete_one_and_asks_again() -> None:
    state, _ = fold([f.entitlements_event(["api"], created=100)])
    state, effects = fold([f.entitlements_event(ELEVEN, created=200)], state)

    assert view(state)["features"] == ELEVEN[:10]
    assert of_type(effects, EntitlementsIncomplete) == [EntitlementsIncomplete(f.CUSTOMER, 200)]


def test_every_delivery_order_ends_with_the_newest_complete_list() -> None:
    twelve = [*ELEVEN, "zeta"]
    history = [
        f.entitlements_event(["api"], created=50),
        f.entitlements_event(ELEVEN, created=100),
        synthetic(ELEVEN, 100),
        f.entitlements_event(twelve, created=200),
        synthetic(twelve, 200),
    ]
    for order in itertools.permutations(history):
        state, _ = fold(order)
        assert view(state)["features"] == twelve, [e["id"] for e in order]


def test_a_redelivered_partial_summary_asks_again_until_the_list_is_complete() -> None:
    partial = f.entitlements_event(ELEVEN, created=100)
    state, _ = fold([partial])

    state, effects = fold([partial], state)  # the first request may have been lost in a crash
    assert effects == [Duplicate(partial["id"]), EntitlementsIncomplete(f.CUSTOMER, 100)]

    state, _ = fold([synthetic(ELEVEN, 100)], state)
    _, effects = fold([partial], state)
    assert effects == [Duplicate(partial["id"])]


def test_a_deleted_customer_has_no_features() -> None:
    state, _ = fold([f.entitlements_event(["api"], created=100), f.customer_event(created=200)])
    assert view(state)["features"] == []
    assert view(state)["deleted"] is True


def test_the_entitlements_survive_the_table_codec() -> None:
    state, _ = fold([f.entitlements_event(ELEVEN, created=100)])
    decoded = decode_customer(encode_customer(state))
    assert decoded is not None
    assert decoded.entitlements == state.entitlements
    assert decoded.account == state.account  # tuples again: no spurious change on the next event
    _, effects = fold([f.entitlements_event(ELEVEN, created=100)], decoded)
    assert of_type(effects, AccountChanged) == []


def summary_with(entitlements: Any) -> bytes:
    event = f.entitlements_event(["api"], created=100)
    event["data"]["object"]["entitlements"] = entitlements
    return orjson.dumps(event)


@pytest.mark.parametrize(
    ("entitlements", "reason"),
    [
        ({"object": "list", "data": [{"id": "ent_1"}], "has_more": False}, "missing_field"),
        ({"object": "list", "data": ["ent_1"], "has_more": False}, "bad_type"),
        ({"object": "list", "data": [{"lookup_key": 7}], "has_more": False}, "bad_type"),
        ("not a list", "bad_type"),
        ({"data": [{"lookup_key": "x" * 81}]}, "too_long"),  # Stripe: up to 80 characters
        ({"data": [{"lookup_key": "a\nb"}]}, "bad_character"),
        ({"data": [{"lookup_key": f"k{n}"} for n in range(1001)]}, "too_long"),
    ],
)
def test_a_summary_the_contract_cannot_carry_is_refused_with_its_reason(
    entitlements: Any, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as refused:
        apply_record(None, summary_with(entitlements), CONFIG)
    assert refused.value.reason == reason


def test_the_longest_lookup_key_and_the_most_features_are_carried() -> None:
    keys = [f"{n:04d}".ljust(80, "k") for n in range(1000)]
    applied = apply_record(None, summary_with({"data": [{"lookup_key": k} for k in keys]}), CONFIG)
    assert applied.output is not None
    assert orjson.loads(applied.output)["features"] == keys
