"""`POST /webhooks/stripe` and `/webhooks/stripe/thin`: read within the limit, verify, allowlist,
publish, then answer. One handler for both: the contract (statuses, reasons, 2xx only once the
broker acknowledged) is the same; only the parsing and the topic differ.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from billstream.allowlist import EventAllowlist
from billstream.ingest.admission import Admission
from billstream.ingest.deadlines import Deadlines
from billstream.ingest.endpoints import PLATFORM_ENDPOINT, Endpoint
from billstream.ingest.event import InvalidPayload, StripeEvent, parse_event, type_label
from billstream.ingest.metrics import EndpointMetrics, Rejection
from billstream.ingest.publisher import Publisher, PublishError, Record, RecordTooLarge
from billstream.ingest.signature import InvalidSignature, SignatureVerifier
from billstream.ingest.thin import (
    HEALTH_PREFIX,
    THIN_OBJECT,
    NotificationParser,
    WrongEndpoint,
    object_kind,
    snapshot_type,
)
from billstream.routing import connected_account

log = logging.getLogger(__name__)

STATUS_OF = {
    Rejection.INVALID_SIGNATURE: 400,
    Rejection.INVALID_PAYLOAD: 400,
    Rejection.WRONG_ENDPOINT: 400,
    Rejection.TOO_LARGE: 413,
    Rejection.TIMEOUT: 408,
    Rejection.UNAVAILABLE: 503,
    Rejection.OVERLOADED: 503,
}
_QUEUED = b'{"status":"queued"}'
LINGER = 1.0  # seconds a refused connection stays half-closed before it is closed
_IGNORED = b'{"status":"ignored"}'


@dataclass(frozen=True, slots=True)
class WebhookIntake:
    """Everything the handler needs, built once per app by `create_app`."""

    verifier: SignatureVerifier
    allowlist: EventAllowlist
    publisher: Publisher
    metrics: EndpointMetrics
    topic: str
    max_body: int
    deadlines: Deadlines
    admission: Admission
    read_timeout: float = 30.0
    retry_after: int = 1  # seconds, on an `overloaded` 503
    # Set for the thin endpoint: notifications are parsed by stripe-python's parser.
    thin: NotificationParser | None = None
    # Whose events this path carries (ingest/endpoints.py); the verifier holds its secrets.
    endpoint: Endpoint = PLATFORM_ENDPOINT

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.metrics.received.inc()
        try:
            body = await read_limited(request, self.max_body, self.read_timeout)
        except TimeoutError:
            log.debug("rejected webhook: body not received in time", extra={"reason": "timeout"})
            return await self._reject_unread(request, Rejection.TIMEOUT)
        except web.RequestPayloadError as error:  # e.g. Content-Encoding: gzip on a non-gzip body
            log.debug("rejected webhook: %s", error, extra={"reason": "invalid_payload"})
            response = self._reject(Rejection.INVALID_PAYLOAD)
            response.force_close()  # the rest of the body cannot be decoded either
            return response
        if body is None:
            return await self._reject_unread(request, Rejection.TOO_LARGE)
        # Shed before any verification work: under overload that work is what runs short.
        if not self.admission.admit():
            response = self._reject(Rejection.OVERLOADED)
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        try:
            return await self._handle_admitted(request, body)
        finally:
            self.admission.release()

    async def _handle_admitted(self, request: web.Request, body: bytes) -> web.Response:
        signatures = request.headers.getall("Stripe-Signature", ())
        header = signatures[0] if signatures else ""
        try:
            if len(signatures) > 1:  # ambiguous: which one would Stripe have meant?
                raise InvalidSignature("several Stripe-Signature headers")
            secret = self.verifier.verify(body, header or None)
        except InvalidSignature as error:
            log.debug("rejected webhook: %s", error, extra={"reason": "invalid_signature"})
            return self._reject(Rejection.INVALID_SIGNATURE)
        try:
            event = self._parse(body, header, secret)
            if self.thin is None and not self.endpoint.accepts(event.account):
                raise WrongEndpoint(f"an event of another endpoint than {self.endpoint.path}")
        except InvalidPayload as error:
            reason = (
                Rejection.WRONG_ENDPOINT
                if isinstance(error, WrongEndpoint)
                else Rejection.INVALID_PAYLOAD
            )
            log.debug("rejected webhook: %s", error, extra={"reason": reason.value})
            return self._reject(reason)
        if not self._allows(event.type):
            self.metrics.ignored(type_label(event.type)).inc()
            return _json(200, _IGNORED)
        record = Record(self.topic, event.key, body, event.headers(time.time_ns() // 1_000_000))
        started = time.perf_counter()
        try:
            acknowledged = self.publisher.publish(record)
            self.deadlines.watch(acknowledged)
            await acknowledged
        except PublishError as error:
            self.metrics.publish_seconds.observe(time.perf_counter() - started)
            # Too large for the topic: Stripe's retries cannot help, and it is no outage.
            reason = (
                Rejection.TOO_LARGE if isinstance(error, RecordTooLarge) else Rejection.UNAVAILABLE
            )
            log.debug(
                "publish failed: %r",
                error,
                extra={"event_id": event.id, "event_type": event.type, "reason": reason.value},
            )
            return self._reject(reason)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self.metrics.queued_for(connected_account(event.account, self.endpoint.platform))
        return _json(200, _QUEUED)

    def _parse(self, body: bytes, header: str, secret: str) -> StripeEvent:
        if self.thin is not None:
            return self.thin.parse(body, header, secret)
        try:
            return parse_event(body, self.endpoint.platform)
        except InvalidPayload:
            if object_kind(body) == THIN_OBJECT:
                raise WrongEndpoint(
                    "a thin notification: post it to /webhooks/stripe/thin"
                ) from None
            raise

    def _allows(self, event_type: str) -> bool:
        """The allowlist; a thin notification by the v1 type it stands for, health always."""
        if self.thin is None:
            return self.allowlist.allows(event_type)
        return event_type.startswith(HEALTH_PREFIX) or self.allowlist.allows(
            snapshot_type(event_type)
        )

    def _reject(self, reason: Rejection) -> web.Response:
        self.metrics.reject(reason)
        return _json(STATUS_OF[reason], b'{"status":"%s"}' % reason.value.encode())

    async def _reject_unread(self, request: web.Request, reason: Rejection) -> web.StreamResponse:
        """413/408 without reading the rest: send it, then close instead of draining the body.

        Closing a socket with unread data makes the kernel send a reset, and a client still
        sending its body may then lose the answer before reading it. So the answer is followed
        by a FIN (end of our side), nothing more is read, and the socket is closed only
        `LINGER` seconds later (at most the read timeout): time for the client to read it.
        """
        response = self._reject(reason)
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        transport = request.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
            if transport.can_write_eof():
                transport.write_eof()
            await asyncio.sleep(min(LINGER, self.read_timeout))
        request.protocol.force_close()
        return response


async def read_limited(request: web.Request, limit: int, timeout: float) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit` bytes.

    Raises TimeoutError when the body is not complete within `timeout` seconds (slow clients
    trickling it); a body that arrived with the head is taken at once, with no timer.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    content = request.content
    if content.is_eof():  # the whole body arrived with the head (Stripe's usual few KB)
        body = content.read_nowait()  # all of it, no await, no timer
        return body if len(body) <= limit else None
    async with asyncio.timeout(timeout):
        return await _read(request, limit)


async def _read(request: web.Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
