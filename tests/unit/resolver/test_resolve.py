"""The resolver's mapping: each kind of stripe.thin-events record, resolved against stripe-mock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from billstream.entitlements.request import entitlements_request
from billstream.processors.dlq import DLQ_REASONS, RESOLVER_REASONS
from billstream.refetch import refetch_event, synthetic_event_id
from billstream.resolver.events import thin_event, unix_seconds
from billstream.resolver.plan import Unresolvable, plan
from billstream.resolver.resolve import DEAD_LETTERED, RESULTS, Resolver
from billstream.settings import Settings
from billstream.simulate.thin import health_notification, notification
from billstream.stripe_calls import REASONS, RateLimiter, RetryPolicy, StripeCalls
from billstream.stripe_client import STRIPE_API_VERSION
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedEntitlements, RecordingClient, client_for

EVENT = {
    "id": "evt_1Snap",
    "object": "event",
    "type": "customer.subscription.updated",
    "created": 1_767_225_600,
    "data": {"object": {"id": "sub_1", "object": "subscription", "customer": "cus_1"}},
}
ELEVEN = [f"feature_{n:02d}" for n in range(11)]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def test_each_record_kind_gets_its_plan() -> None:
    assert plan(dumps(notification(EVENT))).kind == "snapshot"
    assert plan(dumps(notification(EVENT))).target == "evt_1Snap"
    related = plan(dumps(notification(EVENT, snapshot=False)))
    assert (related.kind, related.target) == ("related", "/v1/subscriptions/sub_1")
    health = plan(dumps(health_notification("evt_h", 1)))
    assert (health.kind, health.health_type) == (
        "health",
        "v2.core.health.event_generation_failure.resolved",
    )
    other = plan(dumps(health_notification("evt_h", 1, kind="api_latency.firing")))
    assert other.health_type == "other"
    request = entitlements_request("cus_1", 1_767_225_600)
    assert (plan(dumps(request)).kind, plan(dumps(request)).target) == ("entitlements", "cus_1")
    v2 = notification(EVENT, snapshot=False) | {"type": "v2.core.account.updated"}
    assert plan(dumps(v2)).kind == "ignored"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "resolve_invalid"),
        (b"[1]", "resolve_invalid"),
        (dumps({"id": "evt_1", "object": "event", "type": "x"}), "resolve_invalid"),
        (
            dumps(
                {
                    k: v
                    for k, v in notification(EVENT, snapshot=False).items()
                    if k != "related_object"
                }
            ),
            "resolve_nothing_to_fetch",
        ),
        (
            dumps(
                notification(EVENT, snapshot=False)
                | {"related_object": {"id": "x", "type": "y", "url": "https://evil.example/v1/x"}}
            ),
            "resolve_invalid",
        ),
    ],
)
def test_records_that_can_never_resolve_name_their_reason(value: bytes, reason: str) -> None:
    with pytest.raises(Unresolvable) as raised:
        plan(value)
    assert raised.value.reason == reason
    assert reason in DLQ_REASONS


def test_every_stripe_failure_reason_is_a_dlq_reason_and_results_are_bounded() -> None:
    assert {f"resolve_{reason}" for reason in REASONS} <= set(RESOLVER_REASONS)
    assert len(RESULTS) == len(set(RESULTS)) == 6


def test_synthetic_events_are_deterministic_v1_events() -> None:
    note = notification(EVENT, snapshot=False)
    fetched = {"id": "sub_1", "object": "subscription", "customer": "cus_1", "livemode": False}
    event = thin_event(note, fetched, api_version=STRIPE_API_VERSION, account="acct_9")
    assert event == thin_event(note, fetched, api_version=STRIPE_API_VERSION, account="acct_9")
    assert event["id"] == f"evt_thin_{note['id']}"
    assert event["type"] == "customer.subscription.updated"
    assert event["created"] == 1_767_225_600 == unix_seconds(note["created"])
    assert event["account"] == "acct_9"
    assert event["billstream_source"] == "thin"

    request = {
        "object": "billstream.refetch_request",
        "id": "rfq_abc123",
        "created": 1_767_225_601,
        "customer": "cus_1",
        "related_object": {"id": "sub_1", "type": "subscription", "url": "/v1/subscriptions/sub_1"},
        "reason": "same_second_tie",
    }
    refetched = refetch_event(request, fetched, api_version=STRIPE_API_VERSION)
    assert refetched["id"] == "evt_abc123" == synthetic_event_id("rfq_abc123")
    assert refetched["type"] == "customer.subscription.updated"
    assert refetched["created"] == 1_767_225_601
    assert refetched["billstream_source"] == "refetch"
    named = refetch_event(
        request | {"event_type": "customer.subscription.deleted"}, fetched, api_version="x"
    )
    assert named["type"] == "customer.subscription.deleted"


@pytest.fixture
def settings(make_settings: SettingsFactory, stripe_mock: str) -> Settings:
    return make_settings(stripe_api_key="sk_test_resolver", stripe_api_base=stripe_mock)


def resolver(settings: Settings, transport: RecordingClient) -> Resolver:
    calls = StripeCalls(RateLimiter(1000), RetryPolicy(attempts=2, base=0.001, cap=0.01))
    return Resolver(client_for(settings, transport), calls)


def test_a_snapshot_event_is_fetched_by_id_with_the_connect_account(settings: Settings) -> None:
    transport = RecordingClient()
    outcome = resolver(settings, transport).resolve(dumps(notification(EVENT)), "acct_9")
    assert outcome.result == "snapshot"
    assert outcome.source == "thin"
    assert outcome.event is not None
    assert outcome.event["id"] == "evt_1Snap"
    [sent] = transport.sent
    assert sent.path == "/v1/events/evt_1Snap"
    assert sent.headers["Stripe-Account"] == "acct_9"
    assert sent.headers["Stripe-Version"] == STRIPE_API_VERSION


def test_without_a_snapshot_the_related_object_is_fetched(settings: Settings) -> None:
    transport = RecordingClient()
    outcome = resolver(settings, transport).resolve(
        dumps(notification(EVENT, snapshot=False)), None
    )
    assert outcome.result == "synthetic"
    assert outcome.event is not None
    assert outcome.event["data"]["object"]["object"] == "subscription"
    assert outcome.event["data"]["object"]["id"] == "sub_1"  # stripe-mock echoes the id
    assert [s.path for s in transport.sent] == ["/v1/subscriptions/sub_1"]
    assert "Stripe-Account" not in transport.sent[0].headers
    connected = resolver(settings, transport).resolve(
        dumps(notification(EVENT, snapshot=False)), "acct_9"
    )
    assert transport.sent[1].headers["Stripe-Account"] == "acct_9"
    assert connected.event is not None
    assert connected.event["account"] == "acct_9"


def test_an_unknown_object_is_dead_lettered_not_found(settings: Settings) -> None:
    note = notification(EVENT, snapshot=False) | {
        "related_object": {"id": "zz_1", "type": "zz", "url": "/v1/no_such_things/zz_1"}
    }
    outcome = resolver(settings, RecordingClient()).resolve(dumps(note), None)
    assert (outcome.result, outcome.reason) == (DEAD_LETTERED, "resolve_not_found")


def test_an_entitlements_request_becomes_the_full_summary(settings: Settings) -> None:
    transport = RecordingClient(rewrite=PagedEntitlements("cus_1", ELEVEN, page_cap=10))
    request = entitlements_request("cus_1", 1_767_225_600)
    outcome = resolver(settings, transport).resolve(dumps(request), None)
    assert outcome.result == "refetch"
    assert outcome.source == "refetch"
    assert outcome.event is not None
    summary = outcome.event["data"]["object"]["entitlements"]
    assert [e["lookup_key"] for e in summary["data"]] == ELEVEN
    assert len(transport.sent) == 2  # two pages of ten, through the limiter


def test_a_subscription_refetch_request_is_folded_at_its_created(settings: Settings) -> None:
    request = {
        "object": "billstream.refetch_request",
        "id": "rfq_0123456789abcdef01234567",
        "created": 1_767_225_605,
        "customer": "cus_1",
        "related_object": {"id": "sub_7", "type": "subscription", "url": "/v1/subscriptions/sub_7"},
        "reason": "same_second_tie",
    }
    outcome = resolver(settings, RecordingClient()).resolve(dumps(request), None)
    assert outcome.event is not None
    assert outcome.event["id"] == "evt_0123456789abcdef01234567"
    assert outcome.event["created"] == 1_767_225_605
    assert outcome.event["data"]["object"]["id"] == "sub_7"


def test_health_is_counted_and_nothing_is_fetched(settings: Settings) -> None:
    transport = RecordingClient()
    outcome = resolver(settings, transport).resolve(dumps(health_notification("evt_h", 1)), None)
    assert outcome.result == "health"
    assert outcome.event is None
    assert transport.sent == []
