"""Every row of the contract's table for POST /webhooks/stripe, against the real app."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import pytest

from billstream.ingest.app import WEBHOOK_PATH
from billstream.ingest.endpoints import CONNECT_PATH
from billstream.ingest.metrics import Rejection
from billstream.stripe_signing import sign_payload
from tests.unit.ingest.conftest import Ingest, IngestFactory
from tests.unit.ingest.support import (
    CONNECT_SECRET,
    SECRET,
    FakePublisher,
    Mode,
    event_body,
    sample,
)


async def test_verified_allowed_event_is_queued_byte_for_byte(ingest: Ingest) -> None:
    body = event_body("invoice.paid", event_id="evt_42", customer="cus_7")
    before = time.time_ns() // 1_000_000
    status, answer = await ingest.post(body)
    after = time.time_ns() // 1_000_000

    assert (status, answer) == (200, {"status": "queued"})
    [record] = ingest.publisher.records
    assert record.topic == ingest.settings.topic("stripe.events")
    assert record.value == body
    assert record.key == b"cus_7"
    headers = dict(record.headers)
    assert headers["stripe-event-id"] == b"evt_42"
    assert headers["stripe-event-type"] == b"invoice.paid"
    assert before <= int(headers["received-at"]) <= after
    assert "stripe-account" not in headers
    assert sample(ingest.registry, "stripe_webhook_received_total") == 1
    assert sample(ingest.registry, "stripe_webhook_queued_total") == 1
    assert sample(ingest.registry, "stripe_webhook_publish_seconds_count") == 1


async def test_connect_account_is_a_header_and_customer_events_key_by_object_id(
    ingest: Ingest,
) -> None:
    body = json.dumps(
        {
            "id": "evt_9",
            "type": "customer.updated",
            "account": "acct_1",
            "data": {"object": {"id": "cus_9", "object": "customer"}},
        }
    ).encode()
    assert await ingest.post(body, path=CONNECT_PATH, secret=CONNECT_SECRET) == (
        200,
        {"status": "queued"},
    )
    [record] = ingest.publisher.records
    assert record.key == b"acct_1/cus_9"  # (Stripe account, customer)
    assert dict(record.headers)["stripe-account"] == b"acct_1"


async def test_a_platform_event_keeps_its_pre_connect_key(make_ingest: IngestFactory) -> None:
    """No `account`, or the platform's own id (STRIPE_ACCOUNT_ID): the key is the customer id."""
    ingest = await make_ingest(stripe_account_id="acct_platform")
    for account in (None, "acct_platform"):
        envelope: dict[str, object] = {
            "id": f"evt_{account}",
            "type": "customer.updated",
            "data": {"object": {"id": "cus_9", "object": "customer"}},
        }
        if account is not None:
            envelope["account"] = account
        assert await ingest.post(json.dumps(envelope).encode()) == (200, {"status": "queued"})
    assert [record.key for record in ingest.publisher.records] == [b"cus_9", b"cus_9"]


async def test_each_endpoint_verifies_with_its_own_secret_and_carries_its_own_events(
    ingest: Ingest,
) -> None:
    connected = json.dumps(
        {
            "id": "evt_c",
            "type": "customer.updated",
            "account": "acct_1",
            "data": {"object": {"id": "cus_9", "object": "customer"}},
        }
    ).encode()
    platform = event_body("customer.updated")
    rejected = {"status": "invalid_signature"}
    # A body signed with one endpoint's secret is refused on the other.
    assert await ingest.post(connected, secret=CONNECT_SECRET) == (400, rejected)
    assert await ingest.post(platform, path=CONNECT_PATH) == (400, rejected)
    # Correctly signed, but the event belongs on the other endpoint.
    wrong = {"status": "wrong_endpoint"}
    assert await ingest.post(connected) == (400, wrong)
    assert await ingest.post(platform, path=CONNECT_PATH, secret=CONNECT_SECRET) == (400, wrong)
    assert ingest.publisher.records == []
    counted = {
        (endpoint, reason): sample(
            ingest.registry, "stripe_webhook_rejected_total", endpoint=endpoint, reason=reason
        )
        for endpoint in ("snapshot", "connect")
        for reason in ("invalid_signature", "wrong_endpoint")
    }
    assert counted == {
        ("snapshot", "invalid_signature"): 1,
        ("snapshot", "wrong_endpoint"): 1,
        ("connect", "invalid_signature"): 1,
        ("connect", "wrong_endpoint"): 1,
    }


async def test_without_connect_secrets_there_is_no_connect_endpoint(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(stripe_connect_webhook_secrets=())
    response = await ingest.client.post(CONNECT_PATH, data=event_body("customer.updated"))
    assert response.status == 404


async def test_type_outside_the_allowlist_is_ignored_and_not_published(ingest: Ingest) -> None:
    status, answer = await ingest.post(event_body("charge.succeeded"))
    assert (status, answer) == (200, {"status": "ignored"})
    assert ingest.publisher.records == []
    assert sample(ingest.registry, "stripe_webhook_ignored_total", type="charge.succeeded") == 1
    assert sample(ingest.registry, "stripe_webhook_queued_total") == 0


async def test_ignored_type_label_is_bounded(ingest: Ingest) -> None:
    await ingest.post(event_body("Weird Type/" + "x" * 200))
    assert sample(ingest.registry, "stripe_webhook_ignored_total", type="other") == 1


def _bad_signatures(body: bytes) -> dict[str, str | None]:
    now = int(time.time())
    good = sign_payload(body, SECRET, now)
    return {
        "missing": None,
        "empty": "",
        "garbage": "nonsense",
        "no timestamp": good.split(",", 1)[1],
        "timestamp not a number": good.replace(f"t={now}", "t=soon"),
        "no v1 entry": good.replace("v1=", "v0="),
        "other secret": sign_payload(body, "whsec_someone_else", now),
        "too old": sign_payload(body, SECRET, now - 301),
        "too far in the future": sign_payload(body, SECRET, now + 301),
        "another body": sign_payload(body + b" ", SECRET, now),
        "non-ascii signature": f"t={now},v1=é" + "0" * 63,
    }


@pytest.mark.parametrize("case", list(_bad_signatures(b"")))
async def test_unverifiable_requests_get_400_invalid_signature(ingest: Ingest, case: str) -> None:
    body = event_body()
    status, answer = await ingest.post(body, signature=_bad_signatures(body)[case])
    assert (status, answer) == (400, {"status": "invalid_signature"})
    assert ingest.publisher.records == []
    assert sample(ingest.registry, "stripe_webhook_invalid_signature_total") == 1
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="invalid_signature") == 1


INVALID_PAYLOADS = {
    "not json": b"{not json",
    "not utf-8 json": b'{"id": "\xff"}',
    "array": b"[1, 2]",
    "string": b'"evt_1"',
    "no id": b'{"type": "invoice.paid", "data": {"object": {}}}',
    "empty id": b'{"id": "", "type": "invoice.paid", "data": {"object": {}}}',
    "numeric id": b'{"id": 7, "type": "invoice.paid", "data": {"object": {}}}',
    "no type": b'{"id": "evt_1", "data": {"object": {}}}',
    "type not a string": b'{"id": "evt_1", "type": ["a"], "data": {"object": {}}}',
    "no data": b'{"id": "evt_1", "type": "invoice.paid"}',
    "data not an object": b'{"id": "evt_1", "type": "invoice.paid", "data": 3}',
    "no data.object": b'{"id": "evt_1", "type": "invoice.paid", "data": {}}',
    "data.object a list": b'{"id": "evt_1", "type": "invoice.paid", "data": {"object": []}}',
}


@pytest.mark.parametrize("case", list(INVALID_PAYLOADS))
async def test_verified_non_events_get_400_invalid_payload(ingest: Ingest, case: str) -> None:
    status, answer = await ingest.post(INVALID_PAYLOADS[case])
    # Verified on its raw bytes first: a signed body that is no event is never "forged".
    assert (status, answer) == (400, {"status": "invalid_payload"})
    assert ingest.publisher.records == []
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="invalid_payload") == 1
    assert sample(ingest.registry, "stripe_webhook_invalid_signature_total") == 0


async def test_body_of_exactly_the_limit_is_accepted_one_more_byte_is_413(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(stripe_webhook_max_body=1024)
    base = event_body()
    at_limit = base[:-1] + b" " * (1024 - len(base)) + b"}"
    assert len(at_limit) == 1024
    assert await ingest.post(at_limit) == (200, {"status": "queued"})
    status, answer = await ingest.post(at_limit + b" ")
    assert (status, answer) == (413, {"status": "too_large"})
    assert len(ingest.publisher.records) == 1
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="too_large") == 1


@pytest.mark.parametrize("mode", ["fail", "refuse"])
async def test_broker_failure_gets_503_unavailable(make_ingest: IngestFactory, mode: Mode) -> None:
    ingest = await make_ingest(publisher=FakePublisher(mode))
    status, answer = await ingest.post(event_body())
    assert (status, answer) == (503, {"status": "unavailable"})
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="unavailable") == 1
    assert sample(ingest.registry, "stripe_webhook_queued_total") == 0
    assert sample(ingest.registry, "stripe_webhook_publish_seconds_count") == 1


async def test_unacknowledged_publish_gets_503_after_the_timeout(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(publisher=FakePublisher("hang"), ingest_publish_timeout=0.2)
    status, answer = await ingest.post(event_body())
    assert (status, answer) == (503, {"status": "unavailable"})
    assert sample(ingest.registry, "stripe_webhook_queued_total") == 0


async def test_the_same_delivery_is_queued_once_the_broker_is_back(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(publisher=FakePublisher("fail"))
    body = event_body()
    signature = sign_payload(body, SECRET)
    assert (await ingest.post(body, signature=signature))[0] == 503
    ingest.publisher.mode = "ack"
    assert await ingest.post(body, signature=signature) == (200, {"status": "queued"})
    assert [record.value for record in ingest.publisher.records] == [body]


async def test_beyond_the_in_flight_bound_webhooks_get_a_fast_503_with_retry_after(
    make_ingest: IngestFactory,
) -> None:
    """Three awaiting the broker fill the bound; the next is shed at once, nothing admitted lost."""
    ingest = await make_ingest(publisher=FakePublisher("hold"), ingest_max_in_flight=3)
    admitted = [asyncio.create_task(ingest.post(event_body(event_id=f"evt_{i}"))) for i in range(3)]
    await ingest.publisher.wait_held(3)
    assert sample(ingest.registry, "stripe_webhook_in_flight") == 3

    body = event_body(event_id="evt_shed")
    headers = {"Stripe-Signature": sign_payload(body, SECRET)}
    response = await ingest.client.post(WEBHOOK_PATH, data=body, headers=headers)
    assert (response.status, await response.json()) == (503, {"status": "overloaded"})
    assert response.headers["Retry-After"] == "1"
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="overloaded") == 1
    assert len(ingest.publisher.held) == 3  # shed before publishing

    ingest.publisher.release_held()
    assert [await answer for answer in admitted] == [(200, {"status": "queued"})] * 3
    assert sample(ingest.registry, "stripe_webhook_in_flight") == 0
    ingest.publisher.mode = "ack"  # room again: the retried delivery is queued
    assert await ingest.post(body) == (200, {"status": "queued"})
    assert sorted(r.value for r in ingest.publisher.records) == sorted(
        [event_body(event_id=f"evt_{i}") for i in range(3)] + [body]
    )


async def test_while_the_event_loop_runs_late_webhooks_get_a_fast_503(
    make_ingest: IngestFactory,
) -> None:
    """CPU-bound overload: nothing waits for the broker, yet requests wait to be read."""
    ingest = await make_ingest(ingest_max_loop_lag_ms=50)
    await ingest.post(event_body(event_id="evt_warm"))  # the server (and its lag task) runs
    body = event_body(event_id="evt_late")
    busy = 0.3  # the point: the loop is busy, its timers wake late
    time.sleep(busy)  # noqa: ASYNC251
    await asyncio.sleep(0.01)
    assert sample(ingest.registry, "stripe_webhook_loop_lag_seconds") > 0.2
    assert await ingest.post(body) == (200, {"status": "queued"})  # one pause is not overload

    for _ in range(2):  # late twice in a row: overloaded
        time.sleep(busy)  # noqa: ASYNC251
        await asyncio.sleep(0.01)
    body = event_body(event_id="evt_shed")
    assert await ingest.post(body) == (503, {"status": "overloaded"})
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="overloaded") == 1

    await asyncio.sleep(0.15)  # on time again
    assert await ingest.post(body) == (200, {"status": "queued"})
    assert [r.value for r in ingest.publisher.records][-1] == body


async def test_a_failed_publish_frees_its_place(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(publisher=FakePublisher("fail"), ingest_max_in_flight=1)
    for _ in range(3):
        assert (await ingest.post(event_body()))[1] == {"status": "unavailable"}
    assert sample(ingest.registry, "stripe_webhook_in_flight") == 0


def test_every_rejection_reason_has_a_status() -> None:
    from billstream.ingest.webhook import STATUS_OF

    assert set(STATUS_OF) == set(Rejection)
    assert all(400 <= status < 500 or status == 503 for status in STATUS_OF.values())


async def test_a_body_too_large_for_the_topic_gets_413_never_503(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(publisher=FakePublisher("too_large"))
    assert await ingest.post(event_body()) == (413, {"status": "too_large"})
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="too_large") == 1
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="unavailable") == 0


@pytest.mark.parametrize(
    "encoded",
    [
        b"not gzip at all",
        gzip.compress(event_body())[:10] + b"\xff" * 50,
        gzip.compress(event_body())[:-8] + b"\x00" * 8,
    ],
    ids=["not gzip", "invalid deflate block", "wrong checksum"],
)
async def test_a_body_that_cannot_be_decoded_is_400_invalid_payload(
    ingest: Ingest, encoded: bytes
) -> None:
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Stripe-Signature": sign_payload(encoded, SECRET),
    }
    response = await ingest.client.post(WEBHOOK_PATH, data=encoded, headers=headers)
    assert response.status == 400
    assert await response.json() == {"status": "invalid_payload"}
    assert ingest.publisher.records == []
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="invalid_payload") == 1


async def test_a_gzip_body_is_verified_as_decoded(ingest: Ingest) -> None:
    body = event_body()
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Stripe-Signature": sign_payload(body, SECRET),
    }
    response = await ingest.client.post(WEBHOOK_PATH, data=gzip.compress(body), headers=headers)
    assert (response.status, await response.json()) == (200, {"status": "queued"})
    assert ingest.publisher.records[0].value == body


async def test_queued_webhooks_count_by_bounded_account_label(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(metrics_account_labels="acct_big")
    for event_id, account in (("e1", None), ("e2", "acct_big"), ("e3", "acct_small")):
        envelope: dict[str, object] = {
            "id": event_id,
            "type": "customer.updated",
            "data": {"object": {"id": "cus_9", "object": "customer"}},
        }
        path, secret = WEBHOOK_PATH, SECRET
        if account is not None:
            envelope["account"] = account
            path, secret = CONNECT_PATH, CONNECT_SECRET
        body = json.dumps(envelope).encode()
        assert await ingest.post(body, path=path, secret=secret) == (200, {"status": "queued"})
    name = "stripe_webhook_account_queued_total"
    counts = {a: sample(ingest.registry, name, account=a) for a in ("platform", "acct_big")}
    assert counts == {"platform": 1, "acct_big": 1}
    assert sample(ingest.registry, name, account="connected") == 1  # acct_small: no own label
    assert ingest.registry.get_sample_value(name, {"account": "acct_small"}) is None
