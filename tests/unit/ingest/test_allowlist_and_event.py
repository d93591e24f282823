"""The allowlist's patterns, the payload shape check, and the bounded type label."""

from __future__ import annotations

import json

import orjson
import pytest

from billstream.allowlist import EventAllowlist
from billstream.ingest.event import InvalidPayload, parse_event, type_label
from billstream.routing import record_headers, routing_key
from billstream.settings import DEFAULT_ALLOWED_EVENTS
from tests.unit.ingest.support import event_body


@pytest.mark.parametrize(
    ("patterns", "event_type", "allowed"),
    [
        (DEFAULT_ALLOWED_EVENTS, "checkout.session.completed", True),
        (DEFAULT_ALLOWED_EVENTS, "customer.subscription.updated", True),
        (DEFAULT_ALLOWED_EVENTS, "invoice.payment_failed", True),
        (DEFAULT_ALLOWED_EVENTS, "customer.deleted", True),
        (DEFAULT_ALLOWED_EVENTS, "entitlements.active_entitlement_summary.updated", True),
        (DEFAULT_ALLOWED_EVENTS, "entitlements.active_entitlement_summary.deleted", False),
        (DEFAULT_ALLOWED_EVENTS, "price.updated", True),  # the api's catalog
        (DEFAULT_ALLOWED_EVENTS, "product.deleted", True),
        (DEFAULT_ALLOWED_EVENTS, "charge.succeeded", False),
        (DEFAULT_ALLOWED_EVENTS, "checkout.completed", False),
        (("invoice.*",), "invoice", False),  # the pattern includes the dot
        (("invoice.*",), "invoiceitem.created", False),
        (("invoice.paid",), "invoice.paid", True),  # exact name
        (("invoice.paid",), "invoice.paid.extra", False),
        (("invoice.paid",), "invoice.payment_failed", False),
        (("invoice.paid", "customer.subscription.*"), "customer.subscription.paused", True),
        (("customer.subscription.*",), "customer.updated", False),
        (("*",), "anything.at.all", True),
        ((), "invoice.paid", False),
    ],
)
def test_allowlist(patterns: tuple[str, ...], event_type: str, allowed: bool) -> None:
    assert EventAllowlist(patterns).allows(event_type) is allowed


def test_parse_event_keeps_what_routing_needs() -> None:
    event = parse_event(event_body("invoice.paid", event_id="evt_3", customer="cus_3"))
    assert (event.id, event.type, event.key) == ("evt_3", "invoice.paid", b"cus_3")
    headers = dict(event.headers(1_700_000_000_123))
    assert headers["received-at"] == b"1700000000123"


@pytest.mark.parametrize(
    ("customer", "customer_account", "key"),
    [("cus_3", "acct_9", b"cus_3"), (None, "acct_9", b"acct_9"), (None, None, b"in_1")],
)
def test_an_object_billed_to_an_account_routes_by_customer_account(
    customer: str | None, customer_account: str | None, key: bytes
) -> None:
    # Accounts v2: a customer-configured Account stands for the customer (`customer_account`).
    obj = {"id": "in_1", "object": "invoice", "customer": customer}
    obj["customer_account"] = customer_account
    body = orjson.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": obj}})
    assert parse_event(body).key == key
    assert routing_key(orjson.loads(body)).encode() == key


@pytest.mark.parametrize("account", ["acct_42", "", 7, None, {"id": "acct_1"}])
def test_headers_are_the_contract_headers(account: object) -> None:
    """The same headers `routing.record_headers` gives the whole event (backfill uses it)."""
    body = json.loads(event_body("invoice.paid", event_id="evt_9"))
    if account is not None:
        body["account"] = account
    event = parse_event(json.dumps(body).encode())
    assert event.headers(1_700_000_000_123) == record_headers(body, 1_700_000_000_123)


def test_events_without_customer_route_by_object_id() -> None:
    assert parse_event(event_body("invoice.paid", customer=None)).key == b"in_1"


def test_parse_event_rejects_non_events() -> None:
    with pytest.raises(InvalidPayload, match=r"data\.object"):
        parse_event(b'{"id": "evt_1", "type": "invoice.paid", "data": {"object": null}}')


@pytest.mark.parametrize(
    ("event_type", "label"),
    [
        ("invoice.paid", "invoice.paid"),
        ("customer.subscription.trial_will_end", "customer.subscription.trial_will_end"),
        ("v2.core.account.updated", "v2.core.account.updated"),
        ("INVOICE.PAID", "other"),
        ("invoice paid", "other"),
        ("a." * 40 + "b", "other"),
        ("", "other"),
        ("x" * 65, "other"),
    ],
)
def test_type_label_is_bounded(event_type: str, label: str) -> None:
    assert type_label(event_type) == label
