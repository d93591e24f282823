"""POST /webhooks/stripe/thin: the snapshot endpoint's contract for thin event notifications."""

from __future__ import annotations

import json
import time

from billstream.ingest.app import THIN_WEBHOOK_PATH, WEBHOOK_PATH
from billstream.simulate.thin import health_notification, notification
from billstream.stripe_signing import sign_payload
from tests.unit.ingest.conftest import Ingest, IngestFactory
from tests.unit.ingest.support import SECRET, FakePublisher, event_body, sample

SUBSCRIPTION_UPDATED = {
    "id": "evt_1SnapshotA",
    "object": "event",
    "type": "customer.subscription.updated",
    "created": 1_767_225_600,
    "data": {"object": {"id": "sub_9", "object": "subscription", "customer": "cus_9"}},
}


def thin_body(**changes: object) -> bytes:
    note = notification(SUBSCRIPTION_UPDATED) | changes
    return json.dumps(note, indent=2).encode()


async def post_thin(
    ingest: Ingest, body: bytes, **kwargs: str | None
) -> tuple[int, dict[str, str]]:
    return await ingest.post(body, path=THIN_WEBHOOK_PATH, **kwargs)  # type: ignore[arg-type]


async def test_a_verified_notification_is_queued_unchanged_keyed_by_its_related_object(
    ingest: Ingest,
) -> None:
    body = thin_body()
    status, answer = await post_thin(ingest, body)

    assert (status, answer) == (200, {"status": "queued"})
    [record] = ingest.publisher.records
    assert record.topic == ingest.settings.topic("stripe.thin-events")
    assert record.value == body
    assert record.key == b"sub_9"
    headers = dict(record.headers)
    note = json.loads(body)
    assert headers["stripe-event-id"] == note["id"].encode()
    assert headers["stripe-event-type"] == b"v1.customer.subscription.updated"
    assert "stripe-account" not in headers
    assert sample(ingest.registry, "stripe_webhook_queued_total", endpoint="thin") == 1
    assert sample(ingest.registry, "stripe_webhook_queued_total", endpoint="snapshot") == 0


async def test_connect_context_is_the_account_header_and_no_related_object_keys_by_id(
    ingest: Ingest,
) -> None:
    note = health_notification("evt_health_1", 1_767_225_600) | {"context": "acct_42"}
    status, _ = await post_thin(ingest, json.dumps(note).encode())
    assert status == 200
    [record] = ingest.publisher.records
    assert record.key == b"evt_health_1"
    assert dict(record.headers)["stripe-account"] == b"acct_42"


async def test_the_same_secrets_and_tolerance_decide(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(stripe_webhook_secrets=f"whsec_old,{SECRET}")
    body = thin_body()
    assert (await post_thin(ingest, body, secret="whsec_old"))[0] == 200
    assert await post_thin(ingest, body, secret="whsec_other") == (
        400,
        {"status": "invalid_signature"},
    )
    stale = sign_payload(body, SECRET, timestamp=int(time.time()) - 301)
    assert (await post_thin(ingest, body, signature=stale))[1] == {"status": "invalid_signature"}
    assert (await post_thin(ingest, body, signature=None))[0] == 400
    assert sample(ingest.registry, "stripe_webhook_invalid_signature_total", endpoint="thin") == 3
    assert (
        sample(
            ingest.registry,
            "stripe_webhook_rejected_total",
            endpoint="thin",
            reason="invalid_signature",
        )
        == 3
    )


async def test_each_destination_refuses_the_others_payload_with_a_clear_reason(
    ingest: Ingest,
) -> None:
    snapshot = event_body()
    assert await post_thin(ingest, snapshot) == (400, {"status": "wrong_endpoint"})
    assert await ingest.post(thin_body(), path=WEBHOOK_PATH) == (
        400,
        {"status": "wrong_endpoint"},
    )
    assert ingest.publisher.records == []
    for endpoint in ("thin", "snapshot"):
        rejected = sample(
            ingest.registry,
            "stripe_webhook_rejected_total",
            endpoint=endpoint,
            reason="wrong_endpoint",
        )
        assert rejected == 1


async def test_a_verified_body_that_is_no_notification_is_invalid_payload(ingest: Ingest) -> None:
    for body in (b"[1, 2]", b'{"object": "v2.core.event"}', b'{"id": 1, "type": "x"}', b"\xff"):
        assert await post_thin(ingest, body) == (400, {"status": "invalid_payload"}), body


async def test_allowlist_by_the_v1_type_and_health_always_passes(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(stripe_webhook_allowed_events="invoice.*")
    assert await post_thin(ingest, thin_body()) == (200, {"status": "ignored"})
    health = json.dumps(health_notification("evt_h", 1_767_225_600)).encode()
    assert await post_thin(ingest, health) == (200, {"status": "queued"})
    ignored = sample(
        ingest.registry,
        "stripe_webhook_ignored_total",
        endpoint="thin",
        type="v1.customer.subscription.updated",
    )
    assert ignored == 1


async def test_2xx_only_once_durable(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(publisher=FakePublisher("fail"))
    assert await post_thin(ingest, thin_body()) == (503, {"status": "unavailable"})
