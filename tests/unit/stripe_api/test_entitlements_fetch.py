"""The resolver's entitlements fetch against stripe-mock: every page, the synthetic event."""

from __future__ import annotations

import hashlib

from billstream.entitlements.fetch import active_entitlements, fetch_entitlements_event
from billstream.entitlements.request import entitlements_request, request_id
from billstream.processors.reducer import apply
from billstream.simulate.events import active_entitlement_summary, event
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedEntitlements, RecordingClient, client_for
from tests.unit.processors.support import CONFIG

KEY = "sk_test_entitlements"
CUSTOMER = "cus_eleven"
ELEVEN = [f"feature_{n:02d}" for n in range(11)]


def test_stripe_mock_accepts_the_list_request_as_sent(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    """Without a rewrite stripe-mock answers from its fixtures: the request itself is valid."""
    transport = RecordingClient()
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    found = active_entitlements(client, CUSTOMER)

    assert found
    assert all(item["object"] == "entitlements.active_entitlement" for item in found)
    [sent] = transport.sent
    assert sent.path == "/v1/entitlements/active_entitlements"
    assert sent.query == {"customer": [CUSTOMER], "limit": ["100"]}


def test_every_page_is_walked_with_the_cursor(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient(rewrite=PagedEntitlements(CUSTOMER, ELEVEN))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    found = active_entitlements(client, CUSTOMER, page_size=10)

    assert [item["lookup_key"] for item in found] == ELEVEN
    cursors = [s.query.get("starting_after", [None])[0] for s in transport.sent]
    assert cursors == [None, "ent_test_feature_09"]


def test_a_connect_request_is_made_on_the_connected_account(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient(rewrite=PagedEntitlements(CUSTOMER, ELEVEN))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)

    synthetic = fetch_entitlements_event(
        client, request_id="rfq_x", customer_id=CUSTOMER, created=1, account="acct_connected"
    )

    assert transport.sent[0].headers["Stripe-Account"] == "acct_connected"
    assert synthetic["account"] == "acct_connected"


def test_the_synthetic_event_of_a_request_gives_the_user_all_eleven_features(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    transport = RecordingClient(rewrite=PagedEntitlements(CUSTOMER, ELEVEN, page_cap=10))
    client = client_for(make_settings(stripe_api_key=KEY, stripe_api_base=stripe_mock), transport)
    request = entitlements_request(CUSTOMER, 1_767_225_600)
    calls: list[object] = []

    def call(fn):  # type: ignore[no-untyped-def]
        calls.append(fn)
        return fn()

    synthetic = fetch_entitlements_event(
        client,
        request_id=request["id"],
        customer_id=request["related_object"]["id"],
        created=request["created"],
        call=call,
    )

    assert len(calls) == len(transport.sent) == 2  # every request went through `call`
    digest = hashlib.sha256(request_id(CUSTOMER, 1_767_225_600).encode()).hexdigest()
    assert synthetic["id"] == f"evt_refetch_{digest[:24]}"
    assert synthetic["type"] == "entitlements.active_entitlement_summary.updated"
    assert synthetic["created"] == 1_767_225_600
    assert synthetic["billstream_source"] == "refetch"
    summary = synthetic["data"]["object"]
    assert summary["customer"] == CUSTOMER
    assert summary["entitlements"]["has_more"] is False
    assert len(summary["entitlements"]["data"]) == 11
    # Folded after the ten-item event Stripe sent, the user sees eleven features.
    partial = event(
        "evt_partial", "entitlements.active_entitlement_summary.updated",
        active_entitlement_summary(CUSTOMER, ELEVEN), 1_767_225_600,
    )  # fmt: skip
    state, _ = apply(None, partial, CONFIG)
    assert state.account is not None
    assert len(state.account.features) == 10
    state, _ = apply(state, synthetic, CONFIG)
    assert state.account is not None
    assert list(state.account.features) == ELEVEN
