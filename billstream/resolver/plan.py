"""What a stripe.thin-events record asks for, decided from its JSON alone (no I/O).

A thin notification (`v2.core.event`) either names its v1 snapshot event (`snapshot_event`:
fetch and publish it unchanged), or only its related object (fetch it, publish a synthetic
event), or is one of Stripe's health notifications (count it). A `billstream.refetch_request`
(the worker's) names an object to fetch and fold at the request's `created`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from billstream.entitlements.request import RELATED_TYPE as ENTITLEMENTS_SUMMARY
from billstream.refetch import REQUEST_OBJECT

THIN_OBJECT = "v2.core.event"
HEALTH_PREFIX = "v2.core.health."
# The health notifications Stripe documents that billstream acts on; anything else is `other`.
HEALTH_TYPES = ("v2.core.health.event_generation_failure.resolved",)
OTHER = "other"

Kind = Literal["snapshot", "related", "entitlements", "refetch", "health", "ignored"]


class Unresolvable(Exception):
    """The record can never be resolved as it is: `reason` is its DLQ reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


INVALID = "resolve_invalid"
NOTHING_TO_FETCH = "resolve_nothing_to_fetch"


@dataclass(frozen=True)
class Plan:
    """One record's work: what to fetch (`target`: an event id or a v1 URL) and from what."""

    kind: Kind
    record: dict[str, Any]
    target: str = ""

    @property
    def health_type(self) -> str:
        kind = str(self.record.get("type"))
        return kind if kind in HEALTH_TYPES else OTHER


def _related_url(record: dict[str, Any]) -> str | None:
    related = record.get("related_object")
    url = related.get("url") if isinstance(related, dict) else None
    return url if isinstance(url, str) and url else None


def _safe_v1_path(url: str) -> str:
    """Only a path under /v1/ of the configured API: a record never picks the host."""
    if not url.startswith("/v1/") or "://" in url or ".." in url:
        raise Unresolvable(INVALID, "related object url is not a /v1/ path")
    return url


def plan(value: bytes) -> Plan:
    """The plan for a record value; Unresolvable when it is not a record the resolver knows."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise Unresolvable(INVALID, "not JSON") from None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise Unresolvable(INVALID, "not a JSON object with an id")
    if record.get("object") == REQUEST_OBJECT:
        return _refetch(record)
    if record.get("object") != THIN_OBJECT or not isinstance(record.get("type"), str):
        raise Unresolvable(INVALID, "neither a thin notification nor a refetch request")
    kind = record["type"]
    if kind.startswith(HEALTH_PREFIX):
        return Plan("health", record)
    snapshot = record.get("snapshot_event")
    if isinstance(snapshot, str) and snapshot:
        return Plan("snapshot", record, snapshot)
    url = _related_url(record)
    if not kind.startswith("v1."):
        return Plan("ignored", record)  # a v2 resource: no v1 event for the reducer to fold
    if url is None:
        raise Unresolvable(NOTHING_TO_FETCH, "no snapshot_event and no related_object")
    return Plan("related", record, _safe_v1_path(url))


def _refetch(record: dict[str, Any]) -> Plan:
    related = record.get("related_object")
    if not isinstance(related, dict) or not isinstance(record.get("created"), int):
        raise Unresolvable(INVALID, "refetch request without related_object or created")
    if related.get("type") == ENTITLEMENTS_SUMMARY:
        customer = related.get("id") or record.get("customer")
        if not isinstance(customer, str) or not customer:
            raise Unresolvable(INVALID, "entitlements refetch request without a customer")
        return Plan("entitlements", record, customer)
    url = _related_url(record)
    if url is None:
        raise Unresolvable(NOTHING_TO_FETCH, "refetch request without related_object.url")
    return Plan("refetch", record, _safe_v1_path(url))
