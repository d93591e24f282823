"""Probes, metrics, the publisher's lifetime, the body limit on the wire, and what logs show."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from billstream.ingest.app import WEBHOOK_PATH, create_app
from billstream.stripe_signing import sign_payload
from tests.support.settings import SettingsFactory
from tests.unit.ingest.conftest import Ingest, IngestFactory
from tests.unit.ingest.support import SECRET, FakePublisher, event_body


async def test_readyz_follows_the_publisher(ingest: Ingest) -> None:
    assert (await ingest.client.get("/readyz")).status == 200
    ingest.publisher.connected = False
    response = await ingest.client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "not_ready"}
    assert (await ingest.client.get("/healthz")).status == 200


async def test_metrics_exposes_the_contract_names(ingest: Ingest) -> None:
    await ingest.post(event_body())
    await ingest.post(event_body("charge.succeeded"))
    await ingest.post(event_body(), signature=None)
    text = await (await ingest.client.get("/metrics")).text()
    for line in (
        'stripe_webhook_received_total{endpoint="snapshot"} 3.0',
        'stripe_webhook_received_total{endpoint="thin"} 0.0',
        'stripe_webhook_queued_total{endpoint="snapshot"} 1.0',
        'stripe_webhook_invalid_signature_total{endpoint="snapshot"} 1.0',
        'stripe_webhook_ignored_total{endpoint="snapshot",type="charge.succeeded"} 1.0',
        'stripe_webhook_rejected_total{endpoint="snapshot",reason="invalid_signature"} 1.0',
        'stripe_webhook_rejected_total{endpoint="snapshot",reason="unavailable"} 0.0',
        'stripe_webhook_rejected_total{endpoint="thin",reason="wrong_endpoint"} 0.0',
        'stripe_webhook_publish_seconds_count{endpoint="snapshot"} 1.0',
    ):
        assert line in text.splitlines()


async def test_publisher_starts_and_stops_with_the_app(make_settings: SettingsFactory) -> None:
    publisher = FakePublisher()
    app = create_app(make_settings(), registry=CollectorRegistry(), publisher=publisher)
    runner = web.AppRunner(app)
    await runner.setup()
    assert publisher.started
    assert not publisher.stopped
    await runner.cleanup()
    assert publisher.stopped


def test_ingest_needs_a_signing_secret(make_settings: SettingsFactory) -> None:
    with pytest.raises(ValueError, match="secret"):
        create_app(make_settings(stripe_webhook_secrets=""), publisher=FakePublisher())


async def _raw_exchange(ingest: Ingest, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    server = ingest.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(-1), timeout=30)
    writer.close()
    return answer


async def test_declared_oversize_body_gets_413_before_it_is_sent(ingest: Ingest) -> None:
    # Only the head is sent: a server that waited for the body would never answer.
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t=1,v1=00\r\nContent-Length: {10**9}\r\n\r\n"
    ).encode()
    answer = await _raw_exchange(ingest, head + b"{")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close\r\n" in answer  # closed, not drained for seconds
    assert answer.endswith(b'{"status":"too_large"}')


async def test_streamed_oversize_body_gets_413_without_reading_the_rest(
    make_ingest: IngestFactory,
) -> None:
    ingest = await make_ingest(stripe_webhook_max_body=4096)
    never = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 4097
        await never.wait()  # the rest never comes: only an early answer ends the request
        yield b"never sent"

    response = await ingest.client.post(
        WEBHOOK_PATH, data=chunks(), headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert response.status == 413
    assert await response.json() == {"status": "too_large"}


async def test_a_client_still_sending_reads_the_413_and_an_orderly_end(
    make_ingest: IngestFactory,
) -> None:
    """After the answer comes a FIN, and the unread socket is closed only a moment later:
    closed at once, it would reset the connection, and a client still sending its body could
    lose the answer (seen with test_ingress_hostile's chunked case)."""
    ingest = await make_ingest(stripe_webhook_max_body=4096)
    assert ingest.client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", ingest.client.port)
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )

    async def keep_sending() -> None:
        with contextlib.suppress(ConnectionError):
            while True:  # as fast as the server takes it: unread data is left at its close
                writer.write(b"4000\r\n" + b"x" * 16_384 + b"\r\n")
                await writer.drain()

    sender = asyncio.create_task(keep_sending())
    try:
        answer = await asyncio.wait_for(reader.read(-1), timeout=30)  # up to the FIN
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"status":"too_large"}')


async def test_logs_never_show_secrets_or_payloads(
    make_ingest: IngestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "cus_PRIVATE_MARKER"
    ingest = await make_ingest(publisher=FakePublisher("fail"))
    body = event_body(customer=marker)
    await ingest.post(body)  # 503
    await ingest.post(body, secret="whsec_someone_else")  # invalid signature
    await ingest.post(b'{"note": "' + marker.encode() + b'"}')  # invalid payload
    header = sign_payload(body, SECRET)
    await ingest.post(body + b" ", signature=header)
    assert caplog.records  # rejections are logged at debug level...
    assert SECRET not in caplog.text  # ...without the secret,
    assert marker not in caplog.text  # the payload,
    assert header.split("v1=")[1] not in caplog.text  # or the signature
