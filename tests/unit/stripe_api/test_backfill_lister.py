"""Listing the Events API against stripe-mock: requests it accepts, paging, filters, 429s."""

from __future__ import annotations

import orjson
import pytest
import stripe

from billstream.allowlist import EventAllowlist
from billstream.backfill.lister import (
    Backoff,
    events_newest_first,
    narrow_patterns,
    server_filter,
)
from billstream.backfill.publisher import encode_event
from billstream.stripe_calls import StripeCallFailed
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedEvents, RecordingClient, client_for, stripe_event

KEY = "sk_test_backfill"


@pytest.fixture
def history() -> list[dict[str, object]]:
    """Eight events, two of a type outside the allowlist, over two customers."""
    types = ["invoice.paid", "customer.subscription.updated", "charge.succeeded", "invoice.paid"]
    return [stripe_event(i, 1_000 + i * 10, types[i % 4], f"cus_{i % 2}") for i in range(8)]


def test_every_page_is_walked_with_the_cursor_stripe_mock_accepts(
    make_settings: SettingsFactory, stripe_mock: str, history: list[dict[str, object]]
) -> None:
    transport = RecordingClient(rewrite=PagedEvents(history))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    listed = list(events_newest_first(client, 1_000, ("invoice.*", "customer.*"), page_size=3))

    expected = [e["id"] for e in reversed(history) if e["type"] != "charge.succeeded"]
    assert [e["id"] for e in listed] == expected
    cursors = [s.query.get("starting_after", [None])[0] for s in transport.sent]
    # Pages of 3 over 8 events: the cursor is the last id of the previous page.
    assert cursors == [None, "evt_000005", "evt_000002"]
    assert all(s.query["created[gte]"] == ["1000"] for s in transport.sent)
    assert all(s.query["limit"] == ["3"] for s in transport.sent)


def test_exact_types_are_filtered_by_stripe_and_patterns_here(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient()
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    list(events_newest_first(client, 1, ("invoice.paid", "invoice.payment_failed")))
    list(events_newest_first(client, 1, ("invoice.*",)))

    assert transport.sent[0].query["types[0]"] == ["invoice.paid"]
    assert transport.sent[0].query["types[1]"] == ["invoice.payment_failed"]
    assert transport.sent[1].query["type"] == ["invoice.*"]


def test_a_rate_limited_page_is_retried_after_a_pause(
    make_settings: SettingsFactory, stripe_mock: str, history: list[dict[str, object]]
) -> None:
    transport = RecordingClient(rewrite=PagedEvents(history, rate_limited=2))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)
    pauses: list[float] = []

    listed = list(events_newest_first(client, 0, ("*",), page_size=5, sleep=pauses.append))

    assert len(listed) == 8
    # Exponential with jitter: 0.5 s then 1 s, each scaled into [50%, 100%].
    assert 0.25 <= pauses[0] <= 0.5
    assert 0.5 <= pauses[1] <= 1.0
    assert len(transport.sent) == 2 + 2  # two 429s, then two pages


def test_rate_limiting_that_never_ends_is_an_error(
    make_settings: SettingsFactory, stripe_mock: str, history: list[dict[str, object]]
) -> None:
    transport = RecordingClient(rewrite=PagedEvents(history, rate_limited=10))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    with pytest.raises(StripeCallFailed, match="rate_limited"):
        list(
            events_newest_first(
                client, 0, ("*",), backoff=Backoff(attempts=3), sleep=lambda s: None
            )
        )
    assert len(transport.sent) == 3


def test_published_value_is_the_json_stripe_sent(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    """stripe-mock's event has decimal-string fields that stripe-python turns into Decimal."""
    transport = RecordingClient()
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)
    page = client.v1.events.list({"limit": 1})

    (event,) = list(events_newest_first(client, 0, ("*",)))
    assert page.last_response is not None

    assert orjson.loads(encode_event(event)) == orjson.loads(page.last_response.body)["data"][0]


def test_bad_key_and_closed_port_raise_typed_failures(
    make_settings: SettingsFactory, stripe_mock: str, closed_port_url: str
) -> None:
    bad_transport = RecordingClient()
    bad = client_for(
        make_settings(stripe_api_key="rk_nope", stripe_api_base=stripe_mock), bad_transport
    )
    with pytest.raises(StripeCallFailed) as rejected:
        list(events_newest_first(bad, 0, ("*",)))
    assert rejected.value.reason == "authentication"
    assert isinstance(rejected.value.error, stripe.AuthenticationError)
    assert rejected.value.error.http_status == 401
    assert len(bad_transport.sent) == 1  # a refused key is not retried

    closed = client_for(
        make_settings(stripe_api_key=KEY, stripe_api_base=closed_port_url), RecordingClient()
    )
    with pytest.raises(StripeCallFailed) as unreachable:
        list(events_newest_first(closed, 0, ("*",), backoff=Backoff(attempts=2, base=0.01)))
    assert unreachable.value.reason == "connection"


def test_type_rules_match_the_ingest_allowlist() -> None:
    assert EventAllowlist(("invoice.*",)).allows("invoice.paid")
    assert not EventAllowlist(("invoice.*",)).allows("invoiceitem.created")
    assert EventAllowlist(("*",)).allows("anything")
    assert narrow_patterns(("invoice.*", "customer.*"), ()) == ("invoice.*", "customer.*")
    assert narrow_patterns(("invoice.*",), ("invoice.paid",)) == ("invoice.paid",)
    assert narrow_patterns(("customer.*",), ("customer.subscription.*",)) == (
        "customer.subscription.*",
    )
    with pytest.raises(ValueError, match=r"charge\.succeeded"):
        narrow_patterns(("invoice.*",), ("charge.succeeded",))
    with pytest.raises(ValueError, match=r"'\*'"):
        narrow_patterns(("invoice.*",), ("*",))
    assert server_filter(("a.b", "c.d")) == {"types": ["a.b", "c.d"]}
    assert server_filter(("a.*", "c.d")) == {}
    assert server_filter(("*",)) == {}


def test_undelivered_asks_stripe_for_events_not_yet_delivered_everywhere(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient()
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    list(events_newest_first(client, 1, ("invoice.*",), undelivered=True))
    list(events_newest_first(client, 1, ("invoice.*",)))

    assert transport.sent[0].query["delivery_success"] == ["false"]  # stripe-mock accepted it
    assert "delivery_success" not in transport.sent[1].query


def test_a_connected_accounts_events_are_listed_with_stripe_account_and_named_by_it(
    make_settings: SettingsFactory, stripe_mock: str, history: list[dict[str, object]]
) -> None:
    transport = RecordingClient(rewrite=PagedEvents(history))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    listed = list(events_newest_first(client, 1_000, ("invoice.*",), stripe_account="acct_1"))
    platform = list(events_newest_first(client, 1_000, ("invoice.*",)))

    assert listed
    assert {e["account"] for e in listed} == {"acct_1"}  # keyed acct_1/cus_… as ingest keys it
    assert all("account" not in e for e in platform)
    headers = [{k.lower(): v for k, v in s.headers.items()} for s in transport.sent]
    assert headers[0]["stripe-account"] == "acct_1"
    assert "stripe-account" not in headers[-1]
