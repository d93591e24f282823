"""Thin event notifications as an event destination with the thin payload sends them.

A v1 snapshot event `E` of type `T` about object `O` becomes the `v2.core.event` notification
Stripe delivers for it: type `v1.T`, `related_object` {id, type, url} naming `O`, and
`snapshot_event: E.id` (docs.stripe.com/event-destinations#thin-payload; the field names are
stripe-python 16's `EventNotification` / `RelatedObject`). Deterministic: same event, same
notification, so the simulator's replays stay duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import orjson

from billstream.simulate.traffic import Delivery

THIN_OBJECT = "v2.core.event"

# Where each v1 object a billstream event is about is fetched from (`related_object.url`).
COLLECTIONS = {
    "subscription": "/v1/subscriptions/",
    "invoice": "/v1/invoices/",
    "customer": "/v1/customers/",
    "checkout.session": "/v1/checkout/sessions/",
    "subscription_schedule": "/v1/subscription_schedules/",
    "price": "/v1/prices/",
    "product": "/v1/products/",
    "payment_intent": "/v1/payment_intents/",
    "charge": "/v1/charges/",
    "invoice_payment": "/v1/invoice_payments/",
}


def rfc3339(unix: int) -> str:
    """v2 timestamps are RFC 3339 strings, v1's unix seconds."""
    moment = datetime.datetime.fromtimestamp(unix, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def notification_id(event_id: str) -> str:
    """A v2-looking event id derived from the v1 one."""
    return "evt_" + hashlib.sha256(f"thin:{event_id}".encode()).hexdigest()[:24]


def related_object(obj: dict[str, Any]) -> dict[str, str] | None:
    """`related_object` of an object, or None for a kind with no v1 retrieve URL here."""
    kind, object_id = obj.get("object"), obj.get("id")
    if not isinstance(kind, str) or not isinstance(object_id, str):
        return None
    if kind == "entitlements.active_entitlement_summary":
        customer = obj.get("customer")
        url = f"/v1/entitlements/active_entitlements?customer={customer}"
        return {"id": str(customer), "type": kind, "url": url}
    collection = COLLECTIONS.get(kind)
    if collection is None:
        return None
    return {"id": object_id, "type": kind, "url": collection + object_id}


def notification(event: dict[str, Any], *, snapshot: bool = True) -> dict[str, Any]:
    """The thin notification of a snapshot event; `snapshot=False` leaves out snapshot_event."""
    note: dict[str, Any] = {
        "id": notification_id(str(event["id"])),
        "object": THIN_OBJECT,
        "type": "v1." + str(event["type"]),
        "created": rfc3339(int(event["created"])),
        "livemode": bool(event.get("livemode", False)),
        "reason": None,
    }
    related = related_object(event.get("data", {}).get("object", {}))
    if related is not None:
        note["related_object"] = related
    if snapshot:
        note["snapshot_event"] = event["id"]
    if event.get("account"):
        note["context"] = event["account"]
    return note


def health_notification(
    note_id: str, created: int, kind: str = "event_generation_failure.resolved"
) -> dict[str, Any]:
    """A Stripe health notification (`v2.core.health.<kind>`): nothing to resolve, only count."""
    return {
        "id": note_id,
        "object": THIN_OBJECT,
        "type": f"v2.core.health.{kind}",
        "created": rfc3339(created),
        "livemode": False,
        "reason": None,
    }


Mode = Literal["snapshot", "thin", "both"]
DESTINATIONS: tuple[Mode, ...] = ("snapshot", "thin", "both")


def as_thin(delivery: Delivery) -> Delivery:
    """The thin destination's delivery of the same event (with its `snapshot_event`)."""
    event = orjson.loads(delivery.body)
    body = orjson.dumps(notification(event), option=orjson.OPT_INDENT_2)
    return dataclasses.replace(delivery, body=body, destination="thin", snapshot=delivery.body)


def for_destination(deliveries: Iterable[Delivery], mode: Mode) -> Iterator[Delivery]:
    """Deliveries as a snapshot destination, a thin one, or both (a migration) would make them.

    Bad traffic (forged signatures, broken payloads) stays on the snapshot endpoint.
    """
    for delivery in deliveries:
        is_event = delivery.kind in ("event", "duplicate")
        if mode != "thin" or not is_event:
            yield delivery
        if mode != "snapshot" and is_event:
            yield as_thin(delivery)
