"""A thin event notification's routing fields, read by stripe-python's own parser.

Event destinations with the thin payload send `v2.core.event` notifications: id, type,
`related_object` {id, type, url}, `context` (the connected account, for Connect) and nothing of
the object's state (docs.stripe.com/event-destinations#thin-payload). Ingest verifies the
signature (signature.py, the same secrets and tolerance as the snapshot endpoint), then lets
`StripeClient.parse_event_notification` verify and parse it as Stripe's SDK defines it; the
raw body is published unchanged to stripe.thin-events for the resolver.
"""

from __future__ import annotations

from typing import Any

import msgspec
import stripe

from billstream.ingest.event import InvalidPayload, StripeEvent

THIN_OBJECT = "v2.core.event"
SNAPSHOT_OBJECT = "event"
# Stripe's own health notifications: the resolver counts them whatever the allowlist says.
HEALTH_PREFIX = "v2.core.health."
V1_PREFIX = "v1."


class WrongEndpoint(InvalidPayload):
    """A verified body of the other destination's kind (snapshot on /thin or thin on /stripe)."""


class _Kind(msgspec.Struct):
    object: Any = None


_kind = msgspec.json.Decoder(_Kind).decode


def object_kind(body: bytes) -> Any:
    """The body's top-level `object`, or None when it is not a JSON object."""
    try:
        return _kind(body).object
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def snapshot_type(notification_type: str) -> str:
    """The v1 event type a thin notification stands for (`v1.invoice.paid` → `invoice.paid`)."""
    return notification_type.removeprefix(V1_PREFIX)


class NotificationParser:
    """Wraps one offline StripeClient: parsing never calls Stripe, so no real key is needed."""

    def __init__(self, tolerance: int) -> None:
        self._client = stripe.StripeClient("sk_ingest_parses_notifications_only")
        self._tolerance = tolerance

    def parse(self, body: bytes, header: str, secret: str) -> StripeEvent:
        """The notification's id, type, key (related object id, else its id) and account."""
        if object_kind(body) == SNAPSHOT_OBJECT:
            raise WrongEndpoint("a snapshot event: post it to /webhooks/stripe")
        try:
            payload = body.decode("utf-8")
            notification = self._client.parse_event_notification(
                payload, header, secret, self._tolerance
            )
        except stripe.SignatureVerificationError:
            raise InvalidPayload("signature does not verify for the parser") from None
        except UnicodeDecodeError:
            raise InvalidPayload("not UTF-8") from None
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise InvalidPayload(f"not a thin event notification: {type(error).__name__}") from None
        if not _text(notification.id) or not _text(notification.type):
            raise InvalidPayload("not a thin event notification: id and type must be strings")
        related = getattr(notification, "related_object", None)
        related_id = _text(getattr(related, "id", None)) if related is not None else None
        key = related_id or notification.id
        context = str(notification.context) if notification.context is not None else ""
        # A Connect context is the connected account (a nested one ends with it).
        account = context.rsplit("/", 1)[-1] or None
        return StripeEvent(notification.id, notification.type, key.encode(), account)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
