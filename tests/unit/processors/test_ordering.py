"""Same-second ties (processors/ordering.py): each rule in both delivery orders, the refetch
request and its answer, replays, and a property over every delivery order."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billstream.processors import effects as fx
from billstream.processors.parsing import parse_event
from billstream.refetch import subscription_tie_request
from billstream.tables.state import CustomerState, SubscriptionState
from tests.support.factories import (
    CUSTOMER,
    SUBSCRIPTION,
    business_monthly,
    customer_event,
    pro_monthly,
    subscription,
)
from tests.support.factories import event as make_event
from tests.unit.processors.support import CONFIG, fold, of_type

T = 1_000
REFETCHING = dataclasses.replace(CONFIG, refetch_ties=True)


def update(
    status: str = "active",
    *,
    previous: dict[str, Any] | None = None,
    event_type: str = "customer.subscription.updated",
    created: int = T,
    cancel: bool = False,
    business: bool = False,
    **top: Any,
) -> dict[str, Any]:
    obj = subscription(
        status=status,
        cancel_at_period_end=cancel,
        prices=[business_monthly() if business else pro_monthly()],
        created=0,
    )
    event = make_event(event_type, obj, created=created, previous_attributes=previous)
    event.update(top)
    return event


def record(state: CustomerState) -> SubscriptionState:
    return state.subscriptions[SUBSCRIPTION]


def both_orders(a: dict[str, Any], b: dict[str, Any], config: Any = CONFIG) -> list[Any]:
    """The final record and the tie resolution counted, delivering a→b and b→a."""
    results = []
    for order in ((a, b), (b, a)):
        state, effects = fold(order, config=config)
        ties = [e.resolution for e in of_type(effects, fx.OrderingTie)]
        results.append((record(state), ties))
    return results


def test_previous_attributes_order_an_update_after_the_one_it_came_from() -> None:
    first = update("active", previous={"status": "trialing"})
    second = update("past_due", previous={"status": "active"})

    (one, ties_one), (two, ties_two) = both_orders(first, second)

    assert one.status == two.status == "past_due"
    assert ties_one == ties_two == ["previous_attributes"]


def test_previous_attributes_of_the_price_decide_a_plan_change() -> None:
    upgrade = update(business=True, previous={"items": {"data": [{"price": pro_monthly()}]}})
    earlier = update(business=False, previous={"cancel_at_period_end": True})

    (one, _), (two, ties) = both_orders(earlier, upgrade)

    assert one.plan == two.plan == "BUSINESS"
    assert ties == ["previous_attributes"]


@pytest.mark.parametrize("ending", ["canceled", "incomplete_expired"])
def test_a_same_second_live_update_never_revives_an_ending(ending: str) -> None:
    (one, ties_one), (two, ties_two) = both_orders(update(ending), update("active"))

    assert one.status == two.status == ending
    assert ties_one == ties_two == ["terminal"]


def test_the_deleted_event_is_the_last_of_its_second() -> None:
    deleted = update("canceled", event_type="customer.subscription.deleted")
    (one, ties), (two, _) = both_orders(update("canceled", cancel=True), deleted)

    assert one.deleted
    assert two.deleted
    assert one == two
    assert ties == ["lifecycle"]


def test_the_created_event_comes_before_the_updates_of_its_second() -> None:
    created = update("incomplete", event_type="customer.subscription.created")
    # no previous_attributes: only the lifecycle can tell
    (one, ties_one), (two, ties_two) = both_orders(created, update("past_due"))

    assert one.status == two.status == "past_due"
    assert ties_one == ties_two == ["lifecycle"]


def test_previous_attributes_outrank_the_lifecycle() -> None:
    trial_again = update("trialing", previous={"status": "active"})  # a trial added by the API
    (one, ties_one), (two, ties_two) = both_orders(update("active"), trial_again)

    assert one.status == two.status == "trialing"
    assert ties_one == ties_two == ["previous_attributes"]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [("incomplete", "active"), ("incomplete", "trialing"), ("trialing", "active")],
)
def test_the_lifecycle_orders_first_statuses_before_the_rest(earlier: str, later: str) -> None:
    (one, ties_one), (two, ties_two) = both_orders(update(earlier), update(later))

    assert one.status == two.status == later
    assert ties_one == ties_two == ["lifecycle"]


def test_identical_updates_are_one_state() -> None:
    (one, ties), (two, _) = both_orders(update("active"), update("active"))

    assert one == two
    assert ties == ["identical"]


def test_an_undecidable_tie_goes_to_the_later_delivery_without_a_key() -> None:
    past_due, active = update("past_due"), update("active")

    (one, ties_one), (two, ties_two) = both_orders(past_due, active)

    assert (one.status, two.status) == ("active", "past_due")
    assert ties_one == ties_two == ["later_delivery"]
    _, effects = fold([past_due, active])
    assert of_type(effects, fx.SubscriptionRefetch) == []


def test_an_undecidable_tie_asks_for_a_refetch_with_a_key() -> None:
    _, effects = fold([update("past_due"), update("active")], config=REFETCHING)

    assert [e.resolution for e in of_type(effects, fx.OrderingTie)] == ["refetch_requested"]
    assert of_type(effects, fx.SubscriptionRefetch) == [
        fx.SubscriptionRefetch(CUSTOMER, SUBSCRIPTION, T)
    ]


def test_the_refetch_request_has_the_resolver_s_format() -> None:
    request = subscription_tie_request(CUSTOMER, SUBSCRIPTION, T)

    assert request["object"] == "billstream.refetch_request"
    assert request["id"].startswith("rfq_")
    assert len(request["id"]) == 28
    assert request == subscription_tie_request(CUSTOMER, SUBSCRIPTION, T)  # deterministic
    assert request["id"] != subscription_tie_request(CUSTOMER, SUBSCRIPTION, T + 1)["id"]
    assert {k: v for k, v in request.items() if k != "id"} == {
        "object": "billstream.refetch_request",
        "created": T,
        "customer": CUSTOMER,
        "related_object": {
            "id": SUBSCRIPTION,
            "type": "subscription",
            "url": f"/v1/subscriptions/{SUBSCRIPTION}",
        },
        "reason": "same_second_tie",
        "event_type": "customer.subscription.updated",
    }


def refetch_answer(status: str) -> dict[str, Any]:
    request = subscription_tie_request(CUSTOMER, SUBSCRIPTION, T)
    return update(
        status, event_id="evt_" + request["id"].removeprefix("rfq_"), billstream_source="refetch"
    )


def test_a_refetch_answer_parses_and_wins_its_second_in_any_order() -> None:
    answer = refetch_answer("past_due")
    parsed = parse_event(orjson.dumps(answer))
    ambiguous = [update("past_due"), update("active")]

    for events in (
        [*ambiguous, parsed],
        [parsed, *ambiguous],
        [ambiguous[0], parsed, ambiguous[1]],
    ):
        state, effects = fold(events, config=REFETCHING)
        assert record(state).status == "past_due"
        assert "refetched" in [e.resolution for e in of_type(effects, fx.OrderingTie)]


def test_a_refetch_answer_loses_to_a_newer_second() -> None:
    newer = update("canceled", created=T + 1)
    for events in ([refetch_answer("active"), newer], [newer, refetch_answer("active")]):
        state, _ = fold(events, config=REFETCHING)
        assert record(state).status == "canceled"


def test_a_same_second_replay_beyond_the_dedup_horizon_does_not_roll_back() -> None:
    first = update("active", previous={"status": "trialing"})
    second = update("past_due")  # undecidable against `first`: later delivery wins
    later = customer_event("customer.updated", created=T + 8 * 86400)
    state, _ = fold([first, second, later])
    assert record(state).status == "past_due"
    assert first["id"] not in state.seen  # forgotten by the de-duplication horizon

    replayed, effects = fold([first], state)

    assert record(replayed).status == "past_due"
    assert [e.resolution for e in of_type(effects, fx.OrderingTie)] == ["replayed"]
    assert of_type(effects, fx.AccountChanged) == []


# A pair with a justified order (earlier, later): every delivery order ends at `later`.
_STATUSES = ["active", "past_due", "unpaid", "paused"]


@st.composite
def justified_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    kind = draw(st.sampled_from(["previous_attributes", "lifecycle", "terminal", "created"]))
    business = draw(st.booleans())
    if kind == "previous_attributes":
        a, b = draw(st.lists(st.sampled_from(_STATUSES), min_size=2, max_size=2, unique=True))
        origin = draw(st.sampled_from(["trialing", "incomplete"]))
        earlier = update(a, business=business, previous={"status": origin})
        later = update(b, business=not business, previous={"status": a})
    elif kind == "lifecycle":
        a = draw(st.sampled_from(["incomplete", "trialing"]))
        b = draw(st.sampled_from([s for s in ["trialing", *_STATUSES] if s != a]))
        if a == "trialing" and b != "active":
            b = "active"
        earlier, later = update(a, business=business), update(b, business=not business)
    elif kind == "terminal":
        earlier = update(draw(st.sampled_from(_STATUSES)), business=business)
        later = update(draw(st.sampled_from(["canceled", "incomplete_expired"])))
    else:
        earlier = update("incomplete", event_type="customer.subscription.created")
        later = update(draw(st.sampled_from(_STATUSES)), business=business)
    return earlier, later, later["data"]["object"]["status"]


@given(justified_pairs(), st.booleans(), st.booleans())
def test_every_delivery_order_of_a_justified_pair_gives_one_state(
    pair: tuple[dict[str, Any], dict[str, Any], str], reverse: bool, redeliver: bool
) -> None:
    earlier, later, status = pair
    in_order, _ = fold([earlier, later])
    events = [later, earlier] if reverse else [earlier, later]
    if redeliver:
        events.append(events[0])
    state, _ = fold(events)

    assert record(state) == record(in_order)
    assert record(state).status == status
    assert _fields(state) == _fields(in_order)


def _fields(state: CustomerState) -> dict[str, Any]:
    """The account view without what counts the changes seen along the way."""
    view = state.account_view() or {}
    return {k: v for k, v in view.items() if not k.startswith(("version", "updated"))}
