"""One record in, at most one v1 event out: the Stripe calls of the resolver.

Sync stripe-python calls, each through `StripeCalls` (the process's STRIPE_API_RATE bucket,
retries with backoff, Retry-After); the service runs `resolve` in a thread. A record that still
cannot be resolved becomes an Outcome with a DLQ reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import stripe
from stripe import RequestOptions

from billstream.entitlements.fetch import fetch_entitlements_event
from billstream.refetch import refetch_event
from billstream.resolver.events import thin_event
from billstream.resolver.plan import Plan, Unresolvable, plan
from billstream.stripe_calls import StripeCallFailed, StripeCalls
from billstream.stripe_client import STRIPE_API_VERSION

# billstream_resolver_requests_total{result}: every value exported at 0 from start-up.
SNAPSHOT = "snapshot"
SYNTHETIC = "synthetic"
REFETCH = "refetch"
HEALTH = "health"
IGNORED = "ignored"
DEAD_LETTERED = "dead_lettered"
RESULTS = (SNAPSHOT, SYNTHETIC, REFETCH, HEALTH, IGNORED, DEAD_LETTERED)

SOURCES = {SNAPSHOT: "thin", SYNTHETIC: "thin", REFETCH: "refetch"}


@dataclass(frozen=True)
class Outcome:
    """What became of a record: an event to publish, a health type to count, or a DLQ reason."""

    result: str
    event: dict[str, Any] | None = None
    health_type: str | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def source(self) -> str | None:
        return SOURCES.get(self.result)


def dlq_reason(failure: StripeCallFailed) -> str:
    """`resolve_<reason>`: one DLQ reason per bounded Stripe failure reason."""
    return f"resolve_{failure.reason}"


class Resolver:
    def __init__(self, client: stripe.StripeClient, calls: StripeCalls) -> None:
        self.client = client
        self.calls = calls

    def resolve(self, value: bytes, account: str | None) -> Outcome:
        """Never raises for a bad record or a failed call: those are dead-lettered outcomes."""
        try:
            work = plan(value)
            return self._resolve(work, account)
        except Unresolvable as error:
            return Outcome(DEAD_LETTERED, reason=error.reason, detail=str(error))
        except StripeCallFailed as failure:
            return Outcome(DEAD_LETTERED, reason=dlq_reason(failure), detail=str(failure))

    def _resolve(self, work: Plan, account: str | None) -> Outcome:
        if work.kind == "health":
            return Outcome(HEALTH, health_type=work.health_type)
        if work.kind == "ignored":
            return Outcome(IGNORED)
        options: RequestOptions = {"stripe_account": account} if account else {}
        if work.kind == "snapshot":
            found = self.calls.call(
                lambda: self.client.v1.events.retrieve(work.target, {}, options)
            )
            event: dict[str, Any] = found.to_dict()
            if account and not event.get("account"):
                event["account"] = account
            return Outcome(SNAPSHOT, event=event)
        if work.kind == "entitlements":
            record = work.record
            summary = fetch_entitlements_event(
                self.client,
                request_id=str(record["id"]),
                customer_id=work.target,
                created=int(record["created"]),
                account=account,
                call=self.calls.call,
            )
            return Outcome(REFETCH, event=summary)
        fetched = self._get(work.target, account)
        if work.kind == "refetch":
            try:
                event = refetch_event(
                    work.record, fetched, api_version=STRIPE_API_VERSION, account=account
                )
            except ValueError as error:
                raise Unresolvable("resolve_invalid", str(error)) from None
            return Outcome(REFETCH, event=event)
        event = thin_event(work.record, fetched, api_version=STRIPE_API_VERSION, account=account)
        return Outcome(SYNTHETIC, event=event)

    def _get(self, path: str, account: str | None) -> dict[str, Any]:
        """GET a /v1/ path (the related object's url, query string allowed) as JSON."""
        params: dict[str, Any] = {"stripe_account": account} if account else {}
        response = self.calls.call(lambda: self.client.raw_request("get", path, **params))
        found = orjson.loads(response.body)
        if not isinstance(found, dict):
            raise Unresolvable("resolve_invalid", "Stripe answered with no object")
        return found
