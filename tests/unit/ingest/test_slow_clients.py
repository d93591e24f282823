"""Slow and ambiguous requests: a body not complete in INGEST_READ_TIMEOUT gets 408 and the
connection is closed; several Stripe-Signature headers are refused as malformed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from billstream.ingest.app import WEBHOOK_PATH
from billstream.stripe_signing import sign_payload
from tests.unit.ingest.conftest import IngestFactory
from tests.unit.ingest.support import SECRET, event_body, sample

READ_TIMEOUT = 0.5
SLACK = 5.0  # an upper bound, not a measurement


async def test_a_trickled_body_is_cut_off_with_408(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest(ingest_read_timeout=READ_TIMEOUT)
    body = event_body()

    async def trickle() -> AsyncIterator[bytes]:
        for byte in body:
            yield bytes([byte])
            await asyncio.sleep(0.1)  # the whole body would take far longer than the timeout

    started = time.monotonic()
    response = await ingest.client.post(
        WEBHOOK_PATH, data=trickle(), headers={"Stripe-Signature": sign_payload(body, SECRET)}
    )
    assert (response.status, await response.json()) == (408, {"status": "timeout"})
    assert time.monotonic() - started < READ_TIMEOUT + SLACK
    assert response.headers["Connection"] == "close"
    assert sample(ingest.registry, "stripe_webhook_rejected_total", reason="timeout") == 1
    assert ingest.publisher.records == []


async def test_a_body_sent_in_time_is_queued_despite_a_short_timeout(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(ingest_read_timeout=READ_TIMEOUT)
    body = event_body()

    async def two_parts() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(READ_TIMEOUT / 5)
        yield body[10:]

    response = await ingest.client.post(
        WEBHOOK_PATH, data=two_parts(), headers={"Stripe-Signature": sign_payload(body, SECRET)}
    )
    assert (response.status, await response.json()) == (200, {"status": "queued"})


async def test_several_signature_headers_are_refused(make_ingest: IngestFactory) -> None:
    ingest = await make_ingest()
    body = event_body()
    genuine = sign_payload(body, SECRET)
    for headers in ([genuine, genuine], [genuine, "t=1,v1=00"], ["t=1,v1=00", genuine]):
        response = await ingest.client.post(
            WEBHOOK_PATH, data=body, headers=[("Stripe-Signature", h) for h in headers]
        )
        assert (response.status, await response.json()) == (400, {"status": "invalid_signature"})
    assert ingest.publisher.records == []
